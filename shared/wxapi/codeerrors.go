package wxapi

// Errors of mini-program code management that a release pipeline branches on (addendum B.5), matched with
// errors.Is on the *Error WeChat returned. Code(err) still gives the errcode WeChat sent.
var (
	// ErrAuditPending (85009): a version is already under audit, and a mini program has one at a time. Wait for
	// the weapp_audit_* event, or UndoCodeAudit.
	ErrAuditPending = &Error{Code: 85009}
	// ErrPrivacyScanPending (61039): the privacy-API scan every commit starts has not finished. Submit again in
	// about a minute without committing again: a new commit restarts the scan.
	ErrPrivacyScanPending = &Error{Code: 61039}
	// ErrPrivacyAPI (61040): the code uses a privacy API (getLocation, chooseLocation, ...) the mini program has
	// no permission for, or one not declared in ext_json requiredPrivateInfos. GetCodePrivacyInfo lists them;
	// declare and apply, or submit with PrivacyAPINotUse when they are detected but never called.
	ErrPrivacyAPI = &Error{Code: 61040}
	// ErrAuditQuota (85085): the provider's monthly audit quota, shared by all its mini programs, is used up.
	// QueryQuota tells what is left; wait for next month or ask WeChat for a raise. (Its old errmsg "近7天提交审核
	// 过多" is stale.)
	ErrAuditQuota = &Error{Code: 85085}
	// ErrNoAudit (85058): the mini program was never submitted, so there is no audit: for status polling an
	// answer, not a failure.
	ErrNoAudit = &Error{Code: 85058}
	// ErrNoAuditedVersion (85019, "没有审核版本"): release found no version that passed audit.
	ErrNoAuditedVersion = &Error{Code: 85019}
	// ErrReleaseNotAllowed (85020): the audit status does not allow release; also seen when a newer 体验版 was
	// committed after approval. Check GetLatestAuditStatus.
	ErrReleaseNotAllowed = &Error{Code: 85020}
	// ErrNoCommittedCode (85086 from submit_audit; 86001 from get_page, get_auditstatus and the like): no code
	// was committed for this mini program. Commit first.
	ErrNoCommittedCode = &Error{Code: 85086}
	// ErrTemplateNotFound (85014 from commit, also when template_id is sent quoted; 85064 from the template
	// library: template or draft not found).
	ErrTemplateNotFound = &Error{Code: 85014}
	// ErrInvalidExtJSON (85013): ext_json is not a valid custom configuration. Commit returns it before sending
	// for an ext_json that is not a JSON object.
	ErrInvalidExtJSON = &Error{Code: 85013}
	// ErrProfileIncomplete (86002): the mini program has no nickname, avatar or introduction yet ("未初始化完成"
	// for grayrelease). Only its owner can fix that; retrying cannot.
	ErrProfileIncomplete = &Error{Code: 86002}
)

// aliases maps a second errcode WeChat uses for the same condition to its error, so that one errors.Is works
// whichever API answered.
var aliases = map[int]*Error{
	86001: ErrNoCommittedCode,
	85064: ErrTemplateNotFound,
}

// aliasError is a WeChat error that also matches the error of the condition it shares with another code.
// Unwrap keeps errors.As and Code on WeChat's own *Error.
type aliasError struct {
	err   error
	alias *Error
}

func (e *aliasError) Error() string        { return e.err.Error() }
func (e *aliasError) Unwrap() error        { return e.err }
func (e *aliasError) Is(target error) bool { return target == e.alias }

// withAliases adds the alias match to the errors of the code-management calls.
func withAliases(err error) error {
	if a, ok := aliases[Code(err)]; ok {
		return &aliasError{err: err, alias: a}
	}
	return err
}

// IsAuditPayloadError: submit_audit refused the request itself; fix the item list or descriptions before
// submitting again. 85006 tag format (space-separated, ≤10 tags, each ≤20), 85007 page path not in get_page,
// 85008 no approved category in the account, 85010 an item_list entry has empty fields, 85011 title, 85023
// item_list has not 1–5 entries, 85051 version_desc or preview_info over its limit, 85077 category no longer
// valid (incl. withdrawn by WeChat).
func IsAuditPayloadError(err error) bool {
	return IsCode(err, 85006, 85007, 85008, 85010, 85011, 85023, 85051, 85077)
}

// IsCodeConfigError: the template or ext_json is wrong; fix it and Commit again. 85013 invalid ext_json,
// 85043 template error, 85044 code package too large, 85045 ext_json names a path that does not exist, 85046
// tabBar entry without a path, 85047 pages empty, 85048 ext_json cannot be parsed, 85087 navigateToMiniProgram
// used without declaring its appid list (reported by submit_audit).
func IsCodeConfigError(err error) bool {
	return IsCode(err, 85013, 85043, 85044, 85045, 85046, 85047, 85048, 85087)
}

// IsSubmitRestricted: WeChat restricts submissions; stop and alert a human. 86007 this mini program may not
// submit; 86008 the provider is punished and all its submissions are restricted (stop the whole batch); 86009
// submissions of new mini programs restricted; 86010 iterations of existing mini programs restricted.
func IsSubmitRestricted(err error) bool { return IsCode(err, 86007, 86008, 86009, 86010) }
