package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/wxtpp/platform/shared/credentials"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/tokenstore"
	"github.com/wxtpp/platform/shared/wxapi"
)

// The code template library (代码模板库) belongs to the component: its calls take the component access
// token, which the CLI gets as the functions do (credentials.Component over the table: the stored token, or
// a fresh one from the stored ticket and the component secret). The token is never printed.

const descWidth = 48 // USER_DESC is cut to this many columns in the tables

// component is what the template commands call WeChat with.
type component struct {
	api  *wxapi.Client
	comp *credentials.Component
}

// do calls fn with the component token; a token WeChat calls invalid or expired (40001/42001) is replaced once.
func (k component) do(ctx context.Context, fn func(token string) error) error {
	err := k.comp.Do(ctx, fn)
	if errors.Is(err, credentials.ErrNoTicket) {
		return fmt.Errorf("the component token: %w (the ticket function stores the ticket WeChat pushes every 10 minutes)", err)
	}
	return err
}

func (c *CLI) component(ctx context.Context, s *settings) (context.Context, component, error) {
	if s.componentAppID == "" {
		return ctx, component{}, usagef("the component appid is not known: set WECHAT_COMPONENT_APPID or pass --component-appid")
	}
	t, err := s.openTable(ctx)
	if err != nil {
		return ctx, component{}, err
	}
	secret, err := s.secret(ctx, "component_secret")
	if err != nil {
		return ctx, component{}, fmt.Errorf("the component secret: %w", err)
	}
	// Only warnings reach the operator; the token's comings and goings are the functions' business.
	log := slog.New(slog.NewTextHandler(c.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	api := &wxapi.Client{BaseURL: strings.TrimRight(s.wechatBase, "/"), Timeout: 10 * time.Second, Logger: log}
	store := tokenstore.New(t.DB, t.Name)
	return logging.With(ctx, log), component{api: api, comp: credentials.NewComponent(store, api, s.componentAppID, secret, credentials.Options{})}, nil
}

type draftView struct {
	DraftID     int64  `json:"draft_id"`
	UserVersion string `json:"user_version"`
	UserDesc    string `json:"user_desc"`
	CreatedAt   string `json:"created_at"`
}

type templateView struct {
	TemplateID   int64  `json:"template_id"`
	UserVersion  string `json:"user_version"`
	UserDesc     string `json:"user_desc"`
	CreatedAt    string `json:"created_at"`
	TemplateType int    `json:"template_type"`
	SourceAppID  string `json:"source_miniprogram_appid,omitempty"`
	Developer    string `json:"developer,omitempty"`
}

func (c *CLI) templatesList(ctx context.Context, args []string) error {
	fs, s := c.flags("templates")
	pos, err := parse(fs, args)
	if err != nil {
		return usagef("templates: %v", err)
	}
	if len(pos) != 0 {
		return usagef("templates: unexpected argument %q (subcommands: add DRAFT_ID, delete TEMPLATE_ID)", pos[0])
	}
	ctx, k, err := c.component(ctx, s)
	if err != nil {
		return err
	}
	var drafts []wxapi.TemplateDraft
	var tpls []wxapi.Template
	err = k.do(ctx, func(tok string) (err error) {
		if drafts, err = k.api.TemplateDrafts(ctx, tok); err != nil {
			return err
		}
		tpls, err = k.api.Templates(ctx, tok, wxapi.TemplateNormal)
		return err
	})
	if err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	out := struct {
		Drafts    []draftView    `json:"drafts"`
		Templates []templateView `json:"templates"`
	}{[]draftView{}, []templateView{}}
	var b strings.Builder
	fmt.Fprintf(&b, "Drafts (%d): uploaded with DevTools; `wxtpp templates add DRAFT_ID` makes one a template\n", len(drafts))
	rows := [][]string{{"DRAFT_ID", "USER_VERSION", "USER_DESC", "CREATED"}}
	for _, d := range drafts {
		v := draftView{d.DraftID, d.UserVersion, d.UserDesc, unixStamp(d.CreateTime)}
		out.Drafts = append(out.Drafts, v)
		rows = append(rows, []string{strconv.FormatInt(v.DraftID, 10), oneLine(v.UserVersion), truncate(oneLine(v.UserDesc), descWidth), v.CreatedAt})
	}
	writeTable(&b, "  ", rows)
	fmt.Fprintf(&b, "Templates (%d of at most 200): a campaign's template_id is one of these\n", len(tpls))
	rows = [][]string{{"TEMPLATE_ID", "USER_VERSION", "USER_DESC", "CREATED"}}
	for _, t := range tpls {
		v := templateView{TemplateID: t.TemplateID, UserVersion: t.UserVersion, UserDesc: t.UserDesc, CreatedAt: unixStamp(t.CreateTime),
			TemplateType: t.TemplateType, SourceAppID: t.SourceMiniProgramAppID, Developer: t.Developer}
		out.Templates = append(out.Templates, v)
		rows = append(rows, []string{strconv.FormatInt(v.TemplateID, 10), oneLine(v.UserVersion), truncate(oneLine(v.UserDesc), descWidth), v.CreatedAt})
	}
	writeTable(&b, "  ", rows)
	return c.print(s, out, b.String())
}

func (c *CLI) templatesAdd(ctx context.Context, args []string) error {
	fs, s := c.flags("templates add")
	pos, err := parse(fs, args)
	if err != nil {
		return usagef("templates add: %v", err)
	}
	id, err := oneID("templates add", "draft id", pos)
	if err != nil {
		return err
	}
	ctx, k, err := c.component(ctx, s)
	if err != nil {
		return err
	}
	// addtotemplate does not say the new template's id: it is the one the list gains.
	var before, after []wxapi.Template
	err = k.do(ctx, func(tok string) (err error) {
		before, err = k.api.Templates(ctx, tok, wxapi.TemplateNormal)
		return err
	})
	if err != nil {
		return fmt.Errorf("templates add: %w", err)
	}
	err = k.do(ctx, func(tok string) error { return k.api.AddToTemplate(ctx, tok, id, wxapi.TemplateNormal) })
	switch {
	case errors.Is(err, wxapi.ErrTemplateNotFound):
		return fmt.Errorf("templates add: there is no draft %d (WeChat errcode %d); `wxtpp templates` lists the drafts", id, wxapi.Code(err))
	case wxapi.IsCode(err, 85065):
		return fmt.Errorf("templates add: the template library is full (200 templates; errcode 85065): delete one with `wxtpp templates delete TEMPLATE_ID`")
	case err != nil:
		return fmt.Errorf("templates add: %w", err)
	}
	err = k.do(ctx, func(tok string) (err error) {
		after, err = k.api.Templates(ctx, tok, wxapi.TemplateNormal)
		return err
	})
	var added []wxapi.Template
	if err == nil {
		known := map[int64]bool{}
		for _, t := range before {
			known[t.TemplateID] = true
		}
		for _, t := range after {
			if !known[t.TemplateID] {
				added = append(added, t)
			}
		}
	}
	out := struct {
		DraftID    int64  `json:"draft_id"`
		TemplateID *int64 `json:"template_id"` // null when it could not be told (list again)
	}{DraftID: id}
	text := fmt.Sprintf("Draft %d added to the template library.\n", id)
	if len(added) == 1 {
		out.TemplateID = &added[0].TemplateID
		text = fmt.Sprintf("Draft %d added to the template library as template %d (version %s): use \"template_id\": %d in a campaign.\n",
			id, added[0].TemplateID, added[0].UserVersion, added[0].TemplateID)
	} else {
		text += "Its template_id: see `wxtpp templates`.\n"
	}
	return c.print(s, out, text)
}

func (c *CLI) templatesDelete(ctx context.Context, args []string) error {
	fs, s := c.flags("templates delete")
	pos, err := parse(fs, args)
	if err != nil {
		return usagef("templates delete: %v", err)
	}
	id, err := oneID("templates delete", "template id", pos)
	if err != nil {
		return err
	}
	ctx, k, err := c.component(ctx, s)
	if err != nil {
		return err
	}
	err = k.do(ctx, func(tok string) error { return k.api.DeleteTemplate(ctx, tok, id) })
	if errors.Is(err, wxapi.ErrTemplateNotFound) {
		return fmt.Errorf("templates delete: there is no template %d (WeChat errcode %d); `wxtpp templates` lists them", id, wxapi.Code(err))
	}
	if err != nil {
		return fmt.Errorf("templates delete: %w", err)
	}
	return c.print(s, struct {
		TemplateID int64 `json:"template_id"`
		Deleted    bool  `json:"deleted"`
	}{id, true}, fmt.Sprintf("Template %d deleted (mini programs that committed it keep their code).\n", id))
}

// oneID is the single numeric argument of templates add and delete.
func oneID(cmd, what string, pos []string) (int64, error) {
	if len(pos) != 1 {
		return 0, usagef("%s: want exactly one %s, got %d", cmd, what, len(pos))
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id < 0 {
		return 0, usagef("%s: %q is not a %s (a number)", cmd, pos[0], what)
	}
	return id, nil
}

func unixStamp(sec int64) string {
	if sec == 0 {
		return "-"
	}
	return time.Unix(sec, 0).UTC().Format(time.RFC3339)
}
