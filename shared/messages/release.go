package messages

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wxtpp/platform/shared/authorization"
	"github.com/wxtpp/platform/shared/custommsg"
	"github.com/wxtpp/platform/shared/logging"
	"github.com/wxtpp/platform/shared/wxapi"
)

// 全网发布 (the full-network release check). WeChat assigns one of five test groups at random, so the text
// cases are recognised by their content, whichever account they arrive for.
const (
	releaseText     = "TESTCOMPONENT_MSG_TYPE_TEXT"
	queryAuthPrefix = "QUERY_AUTH_CODE:"
)

// releaseTestAccounts are the five groups' official accounts and mini programs (appid and original id), for
// the one case that has no content to recognise: an event of a test account is answered <Event>from_callback.
// The current document no longer lists that case; it is kept as harmless insurance (protocol addendum A.2).
var releaseTestAccounts = map[string]string{
	"wx570bc396a51b8ff8": "gh_3c884a361561", "wxd101a85aa106f53e": "gh_8dad206e9538",
	"wx9252c5e0bb1836fc": "gh_c0f28a78b318", "wxc39235c15087f6f3": "gh_905ae9d01059",
	"wx8e1097c5bc82cde9": "gh_3f222ed8d140", "wx7720d01d4b2a4500": "gh_393666f1fdf4",
	"wx14550af28c71a144": "gh_26128078e9ab", "wx05d483572dcd5d8b": "gh_39abb5d4e1b7",
	"wxa35b9c23cfe664eb": "gh_2b3713f184a6", "wx5910277cae6fd970": "gh_7818dcb60240",
}

func isReleaseTestAccount(appid, userName string) bool {
	gh, ok := releaseTestAccounts[appid]
	return ok && gh == userName
}

// maxQueryAuthCode bounds the code taken from a fan's text.
const maxQueryAuthCode = 512

// queryAuthCode handles "QUERY_AUTH_CODE:<code>": the code is exchanged (with api_query_auth, through the
// authorization service, which knows if the `authorized` push already did) and "<code>_from_api" is sent to
// the fan as a customer-service message with the account's token, once, however often the push arrives; a
// send that fails is retried through the job queue. The push itself is answered with an empty body.
func (h *Handler) queryAuthCode(ctx context.Context, appid string, msg Message) error {
	code := strings.TrimSpace(strings.TrimPrefix(msg.Content, queryAuthPrefix))
	if code == "" || len(code) > maxQueryAuthCode || strings.ContainsAny(code, " \t\r\n") {
		logging.From(ctx).Warn("QUERY_AUTH_CODE without a usable code; acknowledged")
		return nil
	}
	a, err := h.Exchanger.Exchange(ctx, code, appid)
	if errors.Is(err, authorization.ErrCodeFailed) || errors.Is(err, authorization.ErrCodeSpent) {
		// WeChat's own verdict on the code: no retry changes it.
		logging.From(ctx).Warn("QUERY_AUTH_CODE's code cannot be exchanged; acknowledged", "error", err.Error())
		return nil
	}
	if err != nil {
		return fmt.Errorf("exchange the 全网发布 query_auth_code: %w", err)
	}
	if a.AppID != appid {
		return errors.New("exchange the 全网发布 query_auth_code: the code belongs to another account")
	}
	job := custommsg.Job{
		Key: "query_auth_code:" + code, AppID: appid, Kind: wxapiKind(a.Kind),
		Message: wxapi.Text(msg.FromUserName, code+"_from_api"),
	}
	if err := h.CustomMessages.Send(ctx, job); custommsg.IsRefused(err) {
		logging.From(ctx).Warn("WeChat refused the customer-service reply to QUERY_AUTH_CODE; acknowledged", "error", err.Error())
		return nil
	} else if err != nil {
		return fmt.Errorf("customer-service reply to QUERY_AUTH_CODE: %w", err)
	}
	logging.From(ctx).Info("全网发布 QUERY_AUTH_CODE answered through the customer-service API")
	return nil
}
