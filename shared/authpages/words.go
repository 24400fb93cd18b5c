package authpages

import (
	"strconv"

	"github.com/wxtpp/platform/shared/tokenstore"
)

// permissionSet is a permission set (权限集) in words.
type permissionSet struct {
	ID     int
	ZH, EN string
}

// permissionSetNames names the permission-set ids of the protocol reference (3.4). WeChat adds ids over time;
// an unknown one is shown by number.
var permissionSetNames = map[int][2]string{
	1:  {"消息管理", "Message management"},
	2:  {"用户管理", "User management"},
	3:  {"帐号服务", "Account services"},
	4:  {"网页服务", "Web services"},
	5:  {"微信小店", "WeChat Store"},
	6:  {"微信多客服", "Multi-agent customer service"},
	7:  {"群发与通知", "Mass messages and notifications"},
	8:  {"卡券", "Cards and coupons"},
	9:  {"扫一扫", "Scan"},
	10: {"连WIFI", "Wi-Fi connection"},
	11: {"素材管理", "Media management"},
	12: {"摇周边", "Shake nearby"},
	13: {"门店", "Stores"},
	15: {"自定义菜单", "Custom menu"},
	16: {"认证状态", "Verification status"},
	17: {"帐号管理（小程序）", "Account management (mini program)"},
	18: {"开发管理与数据分析（小程序）", "Development management and data analysis (mini program)"},
	19: {"客服消息管理（小程序）", "Customer service messages (mini program)"},
	20: {"微信登录（小程序）", "WeChat login (mini program)"},
	21: {"数据分析（小程序）", "Data analysis (mini program)"},
	22: {"城市服务", "City services"},
	23: {"广告管理", "Advertising management"},
	24: {"开放平台帐号管理", "Open Platform account management"},
	25: {"开放平台帐号管理（小程序）", "Open Platform account management (mini program)"},
	26: {"电子发票", "Electronic invoices"},
	41: {"搜索widget", "Search widget"},
}

func permissionSets(ids []int) []permissionSet {
	out := make([]permissionSet, 0, len(ids))
	for _, id := range ids {
		n, ok := permissionSetNames[id]
		if !ok {
			n = [2]string{"权限集 " + strconv.Itoa(id), "Permission set " + strconv.Itoa(id)}
		}
		out = append(out, permissionSet{ID: id, ZH: n[0], EN: n[1]})
	}
	return out
}

// accountKind describes a stored account: 小程序, or 公众号 with its service type.
func accountKind(a tokenstore.Authorizer) (zh, en string) {
	switch a.Kind {
	case tokenstore.KindMiniProgram:
		return "小程序", "Mini Program"
	case tokenstore.KindOfficialAccount:
		if a.Info.ServiceType == 2 {
			return "公众号（服务号）", "Official Account (service)"
		}
		return "公众号（订阅号）", "Official Account (subscription)"
	}
	return "帐号", "Account"
}

// authTypeWords says which accounts an auth_type lets the merchant choose from.
func authTypeWords(authType string) (zh, en string) {
	switch authType {
	case "1":
		return "公众号", "an official account"
	case "2":
		return "小程序", "a mini program"
	}
	return "公众号或小程序", "an official account or a mini program"
}
