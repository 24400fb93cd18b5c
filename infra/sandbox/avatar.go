package sandbox

import (
	"crypto/sha256"
	"fmt"
	"hash/fnv"
	"html"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Account images are generated SVGs served by the sandbox itself, so pages
// and API answers never point outside the sandbox.
const (
	avatarPrefix = "/sandbox/avatar/" // + appid + ".svg": head_img
	qrcodePrefix = "/sandbox/qrcode/" // + appid + ".svg": qrcode_url
)

// accountFromImagePath resolves /sandbox/{avatar,qrcode}/{appid}.svg.
func (s *Sandbox) accountFromImagePath(path, prefix string) (Account, bool) {
	appid, ok := strings.CutSuffix(strings.TrimPrefix(path, prefix), ".svg")
	if !ok {
		return Account{}, false
	}
	a := s.authorizers[appid] // the map is never written after New
	if a == nil {
		return Account{}, false
	}
	return a.acct, true
}

// GET /sandbox/avatar/{appid}.svg: a coloured circle with the first
// character of the account's name.
func (s *Sandbox) serveAvatar(w http.ResponseWriter, r *http.Request) {
	acct, ok := s.accountFromImagePath(r.URL.Path, avatarPrefix)
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody(&apiError{code: codeNotFoundSandboxLocal}))
		return
	}
	writeSVG(w, avatarSVG(acct))
}

// GET /sandbox/qrcode/{appid}.svg: a QR-code-like picture (not scannable).
func (s *Sandbox) serveQRCode(w http.ResponseWriter, r *http.Request) {
	acct, ok := s.accountFromImagePath(r.URL.Path, qrcodePrefix)
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody(&apiError{code: codeNotFoundSandboxLocal}))
		return
	}
	writeSVG(w, qrcodeSVG(acct.AppID))
}

func writeSVG(w http.ResponseWriter, svg string) {
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write([]byte(svg))
}

func avatarSVG(a Account) string {
	h := fnv.New32a()
	h.Write([]byte(a.AppID))
	hue := h.Sum32() % 360
	first, _ := utf8.DecodeRuneInString(a.NickName)
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96">`+
		`<circle cx="48" cy="48" r="48" fill="hsl(%d,55%%,48%%)"/>`+
		`<text x="48" y="50" dominant-baseline="middle" text-anchor="middle" font-size="44" `+
		`font-family="PingFang SC,Microsoft YaHei,Noto Sans CJK SC,sans-serif" fill="#fff">%s</text></svg>`,
		hue, html.EscapeString(string(first)))
}

// qrcodeSVG draws qrModules(appid), so each account has a stable picture.
func qrcodeSVG(appid string) string {
	const cell = 8
	mods := qrModules(appid)
	n := len(mods)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`,
		(n+2)*cell, (n+2)*cell, n+2, n+2)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`, n+2, n+2)
	for y, row := range mods {
		for x, dark := range row {
			if dark {
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="1" height="1"/>`, x+1, y+1)
			}
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// qrModules is a 21x21 QR-like grid (not scannable): the three finder
// patterns and modules derived from seed.
func qrModules(seed string) [21][21]bool {
	const n = 21
	sum := sha256.Sum256([]byte(seed))
	finder := func(x, y int) (in, dark bool) {
		for _, o := range [][2]int{{0, 0}, {n - 7, 0}, {0, n - 7}} {
			dx, dy := x-o[0], y-o[1]
			if dx >= 0 && dx < 7 && dy >= 0 && dy < 7 {
				ring := min(dx, dy, 6-dx, 6-dy)
				return true, ring != 1
			}
		}
		return false, false
	}
	var out [n][n]bool
	bit := 0
	for y := range n {
		for x := range n {
			if in, d := finder(x, y); in {
				out[y][x] = d
			} else {
				out[y][x] = sum[(bit/8)%len(sum)]>>(bit%8)&1 == 1
				bit++
			}
		}
	}
	return out
}
