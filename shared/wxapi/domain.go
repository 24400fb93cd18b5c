package wxapi

import "context"

// Server and business (webview) domains of a mini program, and its testers (体验者).

// Domain actions. Get reads; the others change the lists, count against the 50 changes a month, and are
// made once.
const (
	DomainAdd    = "add"
	DomainDelete = "delete"
	DomainSet    = "set"
	DomainGet    = "get"
)

// DomainList is the six server-domain lists. A nil list is left out of a request; an empty non-nil one is
// sent as [] (with set, that clears the list).
type DomainList struct {
	RequestDomain   []string `json:"requestdomain,omitzero"`
	WsRequestDomain []string `json:"wsrequestdomain,omitzero"`
	UploadDomain    []string `json:"uploaddomain,omitzero"`
	DownloadDomain  []string `json:"downloaddomain,omitzero"`
	UDPDomain       []string `json:"udpdomain,omitzero"`
	TCPDomain       []string `json:"tcpdomain,omitzero"`
}

// DomainRequest is the body of modify_domain and modify_domain_directly.
type DomainRequest struct {
	Action string `json:"action"` // DomainAdd, DomainDelete, DomainSet or DomainGet
	DomainList
}

// Domains is the answer of modify_domain: the lists now set, and the domains WeChat refused.
type Domains struct {
	DomainList
	InvalidRequestDomain   []string `json:"invalid_requestdomain"`
	InvalidWsRequestDomain []string `json:"invalid_wsrequestdomain"`
	InvalidUploadDomain    []string `json:"invalid_uploaddomain"`
	InvalidDownloadDomain  []string `json:"invalid_downloaddomain"`
	InvalidUDPDomain       []string `json:"invalid_udpdomain"`
	InvalidTCPDomain       []string `json:"invalid_tcpdomain"`
}

// ModifyDomain changes or reads the server domains. The domains must first be registered on the third-party
// platform (85015–85018 otherwise); do not mix it with ModifyDomainDirectly for one mini program.
func (c *Client) ModifyDomain(ctx context.Context, token string, r DomainRequest) (Domains, error) {
	return c.modifyDomain(ctx, "modify_domain", token, r)
}

// ModifyDomainDirectly changes or reads the server domains without registering them on the platform first.
// They take effect with the next commit and release. (Request fields assumed to be modify_domain's.)
func (c *Client) ModifyDomainDirectly(ctx context.Context, token string, r DomainRequest) (Domains, error) {
	return c.modifyDomain(ctx, "modify_domain_directly", token, r)
}

func (c *Client) modifyDomain(ctx context.Context, api, token string, r DomainRequest) (Domains, error) {
	if err := errAction(api, r.Action, DomainAdd, DomainDelete, DomainSet, DomainGet); err != nil {
		return Domains{}, err
	}
	call := c.act
	if r.Action == DomainGet {
		call = c.read
	}
	var out Domains
	err := call(ctx, api, "POST", "/wxa/"+api, accessQuery(token), r, &out)
	return out, err
}

// EffectiveDomains is the answer of get_effective_domain: the lists set in the mp console, through the
// platform, directly, and what will be live after the next release.
type EffectiveDomains struct {
	MP        DomainList `json:"mp_domain"`
	Third     DomainList `json:"third_domain"`
	Direct    DomainList `json:"direct_domain"`
	Effective DomainList `json:"effective_domain"`
}

// GetEffectiveDomain reads the server domains from every source and the ones that will be in effect.
func (c *Client) GetEffectiveDomain(ctx context.Context, token string) (EffectiveDomains, error) {
	var out EffectiveDomains
	err := c.read(ctx, "get_effective_domain", "POST", "/wxa/get_effective_domain", accessQuery(token), noFields, &out)
	return out, err
}

// SetWebviewDomain changes or reads the business (web-view) domains, with the Domain* actions; domains are
// https URLs without ports. A nil domains is left out (for get); an empty one with set clears the list.
func (c *Client) SetWebviewDomain(ctx context.Context, token, action string, domains []string) ([]string, error) {
	return c.setWebviewDomain(ctx, "setwebviewdomain", token, action, domains)
}

// SetWebviewDomainDirectly is SetWebviewDomain without registering the domains on the platform. Set once,
// then add: each set makes the mini program need a new release.
func (c *Client) SetWebviewDomainDirectly(ctx context.Context, token, action string, domains []string) ([]string, error) {
	return c.setWebviewDomain(ctx, "setwebviewdomain_directly", token, action, domains)
}

func (c *Client) setWebviewDomain(ctx context.Context, api, token, action string, domains []string) ([]string, error) {
	// WeChat reads a missing action as "add every business domain of the platform"; refusing it keeps that
	// from happening by accident.
	if err := errAction(api, action, DomainAdd, DomainDelete, DomainSet, DomainGet); err != nil {
		return nil, err
	}
	call := c.act
	if action == DomainGet {
		call = c.read
	}
	body := struct {
		Action  string   `json:"action"`
		Domains []string `json:"webviewdomain,omitzero"`
	}{action, domains}
	var out struct {
		Domains []string `json:"webviewdomain"`
	}
	err := call(ctx, api, "POST", "/wxa/"+api, accessQuery(token), body, &out)
	return out.Domains, err
}
