package sandbox

import (
	"fmt"
	"regexp"
)

// Account kinds.
const (
	KindMiniProgram     = "miniprogram"
	KindOfficialAccount = "officialaccount"
)

// Account is a WeChat account (mini program or official account) that a
// merchant can authorize to the component on the sandbox's authorization page.
type Account struct {
	AppID         string // wx + 16 hex digits, e.g. wx5a1c0e8d2b7f3a01
	Kind          string // KindMiniProgram or KindOfficialAccount
	NickName      string // display name, shown on the authorization page
	UserName      string // original id, gh_...
	Alias         string // 微信号; may be empty
	PrincipalName string // 主体名称 (the company behind the account)
	Signature     string // 简介
	// ServiceType is service_type_info.id: official accounts 0 订阅号,
	// 1 upgraded old subscription account, 2 服务号; mini programs 0.
	ServiceType int
	// VerifyType is verify_type_info.id: -1 未认证, 0 微信认证, ...
	VerifyType int
	// FuncInfo lists the permission-set (权限集) ids granted when the account
	// authorizes, reported as func_info.
	FuncInfo []int
	// Categories are the mini program's service categories (mini programs only).
	Categories []Category
}

// Category is a mini program service category as reported in
// MiniProgramInfo.categories. The ids are what /wxa/get_category reports
// (first_id, second_id) and submit_audit's items name; 0 means "make one up
// from the name".
type Category struct {
	First    string `json:"first"`
	Second   string `json:"second"`
	FirstID  int    `json:"-"`
	SecondID int    `json:"-"`
}

// IsMiniProgram reports whether a is a mini program.
func (a Account) IsMiniProgram() bool { return a.Kind == KindMiniProgram }

// kindLabel is the bilingual label shown on pages.
func (a Account) kindLabel() string {
	if a.IsMiniProgram() {
		return "小程序 Mini Program"
	}
	if a.ServiceType == 2 {
		return "服务号 Service Account"
	}
	return "订阅号 Subscription Account"
}

// accountType is getaccountbasicinfo's account_type: 1 订阅号, 2 服务号, 3 小程序.
func (a Account) accountType() int {
	switch {
	case a.IsMiniProgram():
		return 3
	case a.ServiceType == 2:
		return 2
	default:
		return 1
	}
}

// Permission-set ids granted by default (see protocol reference 3.4).
var (
	defaultMiniProgramFuncs     = []int{17, 18, 19, 20, 21, 25}
	defaultOfficialAccountFuncs = []int{1, 2, 3, 4, 7, 11, 15, 24}
)

// DefaultAccounts returns the accounts a sandbox offers when Config.Accounts is
// nil: three mini programs and three official accounts of made-up merchants.
// Their appids are fixed so that local runs and tests can refer to them.
func DefaultAccounts() []Account {
	return []Account{
		{
			AppID: "wx5a1c0e8d2b7f3a01", Kind: KindMiniProgram, NickName: "鲜果时光小店",
			UserName: "gh_7c2e4a9b1d30", PrincipalName: "深圳市鲜果时光科技有限公司",
			Signature: "每日新鲜水果，30 分钟送达。", ServiceType: 0, VerifyType: 0,
			FuncInfo: defaultMiniProgramFuncs,
			Categories: []Category{{First: "商家自营", Second: "生鲜果蔬", FirstID: 304, SecondID: 722},
				{First: "商家自营", Second: "食品饮料", FirstID: 304, SecondID: 723}},
		},
		{
			AppID: "wx8b3d2f6e4c1a9e02", Kind: KindMiniProgram, NickName: "城市咖啡馆点单",
			UserName: "gh_2f8a61c3e9b4", PrincipalName: "上海城市咖啡餐饮管理有限公司",
			Signature: "线上点单，到店自取。", ServiceType: 0, VerifyType: 0,
			FuncInfo: defaultMiniProgramFuncs,
			Categories: []Category{{First: "餐饮服务", Second: "点餐平台", FirstID: 220, SecondID: 221},
				{First: "餐饮服务", Second: "饮品", FirstID: 220, SecondID: 224}},
		},
		{
			AppID: "wx1e7c9a4b6d2f8c03", Kind: KindMiniProgram, NickName: "悦读书房",
			UserName: "gh_9d4b7e2a6c15", PrincipalName: "杭州悦读文化传播有限公司",
			Signature: "好书推荐与借阅预约。", ServiceType: 0, VerifyType: -1,
			FuncInfo: defaultMiniProgramFuncs,
			Categories: []Category{{First: "文娱", Second: "图书", FirstID: 150, SecondID: 158},
				{First: "教育", Second: "在线教育", FirstID: 1, SecondID: 11}},
		},
		{
			AppID: "wx3f6a8c1e2b9d4a04", Kind: KindOfficialAccount, NickName: "鲜果时光",
			UserName: "gh_4e1c8b7a2d63", Alias: "xianguoshiguang", PrincipalName: "深圳市鲜果时光科技有限公司",
			Signature: "鲜果时光官方服务号。", ServiceType: 2, VerifyType: 0,
			FuncInfo: defaultOfficialAccountFuncs,
		},
		{
			AppID: "wx6d2b4e9f7a3c1e05", Kind: KindOfficialAccount, NickName: "城市咖啡馆",
			UserName: "gh_a3f9c2e18b74", Alias: "citycafe", PrincipalName: "上海城市咖啡餐饮管理有限公司",
			Signature: "新品与活动早知道。", ServiceType: 0, VerifyType: 0,
			FuncInfo: defaultOfficialAccountFuncs,
		},
		{
			AppID: "wx9c4e1a7b3f6d2b06", Kind: KindOfficialAccount, NickName: "山野户外",
			UserName: "gh_5b8e3d9c1f27", PrincipalName: "成都山野户外运动俱乐部",
			Signature: "周末徒步与露营活动。", ServiceType: 0, VerifyType: -1,
			FuncInfo: defaultOfficialAccountFuncs,
		},
	}
}

var appIDPattern = regexp.MustCompile(`^wx[0-9a-f]{16}$`)

// validateAccounts checks the account list given to New.
func validateAccounts(accts []Account) error {
	seen := make(map[string]bool, len(accts))
	for i, a := range accts {
		if !appIDPattern.MatchString(a.AppID) {
			return fmt.Errorf("account %d: appid %q is not wx followed by 16 hex digits", i, a.AppID)
		}
		if seen[a.AppID] {
			return fmt.Errorf("account %d: duplicate appid %s", i, a.AppID)
		}
		seen[a.AppID] = true
		if a.Kind != KindMiniProgram && a.Kind != KindOfficialAccount {
			return fmt.Errorf("account %s: kind %q is neither %q nor %q", a.AppID, a.Kind, KindMiniProgram, KindOfficialAccount)
		}
		if a.NickName == "" {
			return fmt.Errorf("account %s: empty NickName", a.AppID)
		}
	}
	return nil
}

// cloneAccount deep-copies the slices so callers cannot mutate sandbox state.
func cloneAccount(a Account) Account {
	a.FuncInfo = append([]int(nil), a.FuncInfo...)
	a.Categories = append([]Category(nil), a.Categories...)
	return a
}

// GeneratedAccounts returns n synthetic accounts (alternating mini programs and official accounts, appids
// wx + 16 hex digits derived from the index) for load tests and benchmarks that need many authorizers.
func GeneratedAccounts(n int) []Account {
	out := make([]Account, n)
	for i := range out {
		a := Account{
			AppID:    fmt.Sprintf("wx%016x", 0xa000000000000000+uint64(i)),
			UserName: fmt.Sprintf("gh_%012x", i),
			NickName: fmt.Sprintf("测试账号 %d", i),
		}
		if i%2 == 0 {
			a.Kind, a.FuncInfo = KindMiniProgram, defaultMiniProgramFuncs
			a.Categories = []Category{{First: "工具", Second: "效率", FirstID: 287, SecondID: 612},
				{First: "工具", Second: "信息查询", FirstID: 287, SecondID: 613}}
		} else {
			a.Kind, a.FuncInfo, a.ServiceType = KindOfficialAccount, defaultOfficialAccountFuncs, 2
		}
		out[i] = a
	}
	return out
}
