package wxcrypt

import (
	"errors"
	"strconv"
)

// Error is a WXBizMsgCrypt failure. Code is the official sample's code (ierror.py / AesException).
// Two Errors match under errors.Is when their codes are equal, so a detailed error such as
// "illegal buffer: bad padding" matches the ErrIllegalBuffer sentinel.
type Error struct {
	Code int
	// Msg is a short description; it never contains secrets or plaintext.
	Msg string
}

func (e *Error) Error() string {
	return "wxcrypt: " + e.Msg + " (" + strconv.Itoa(e.Code) + ")"
}

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && t.Code == e.Code
}

// Official codes.
const (
	CodeValidateSignature = -40001
	CodeParseXML          = -40002
	CodeIllegalAESKey     = -40004
	CodeValidateAppID     = -40005
	CodeEncryptAES        = -40006
	CodeDecryptAES        = -40007
	CodeIllegalBuffer     = -40008
	CodeDecodeBase64      = -40010
	CodeGenReturnXML      = -40011
)

// Sentinels, one per failure kind; match with errors.Is.
var (
	ErrInvalidSignature = &Error{Code: CodeValidateSignature, Msg: "invalid signature"}
	ErrParseXML         = &Error{Code: CodeParseXML, Msg: "xml parse error"}
	ErrIllegalAESKey    = &Error{Code: CodeIllegalAESKey, Msg: "illegal AES key"}
	ErrAppIDMismatch    = &Error{Code: CodeValidateAppID, Msg: "appid mismatch"}
	ErrEncryptAES       = &Error{Code: CodeEncryptAES, Msg: "AES encrypt error"}
	ErrDecryptAES       = &Error{Code: CodeDecryptAES, Msg: "AES decrypt error"}
	ErrIllegalBuffer    = &Error{Code: CodeIllegalBuffer, Msg: "illegal buffer"}
	ErrDecodeBase64     = &Error{Code: CodeDecodeBase64, Msg: "base64 decode error"}
	ErrGenReturnXML     = &Error{Code: CodeGenReturnXML, Msg: "cannot build XML"}
)

// ErrConfig reports an unusable token or appid given to New (bad keys are ErrIllegalAESKey).
var ErrConfig = errors.New("wxcrypt: invalid configuration")

// newErr returns a detailed error matching the sentinel of the same code.
func newErr(code int, msg string) error { return &Error{Code: code, Msg: msg} }

// ErrorCode returns the official code carried by err, or 0 if err is not (or does not wrap) an *Error.
func ErrorCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}
