package localrun

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// A route with IAM set plays API Gateway's AWS_IAM authorization: the request must carry a SigV4 signature
// (service execute-api) made with LocalCredentials, and the function sees the caller in
// requestContext.authorizer.iam, as in AWS. Anything else is answered 403 {"message":"Forbidden"} without
// invoking the function.

// LocalCredentials are the dummy credentials the local stack accepts (the emulators' and the operator CLI's).
var LocalCredentials = aws.Credentials{AccessKeyID: "dummy", SecretAccessKey: "dummy"}

// LocalCallerARN is the caller a valid local signature stands for.
const LocalCallerARN = "arn:aws:iam::" + AccountID + ":user/local-developer"

// maxClockSkew is how far a signature's X-Amz-Date may be from now (API Gateway allows 15 minutes).
const maxClockSkew = 15 * time.Minute

var errUnsigned = errors.New("no SigV4 Authorization header")

// verifySigV4 checks r's signature against LocalCredentials by signing the same request again; body is the
// request body as API Gateway received it.
func verifySigV4(r *http.Request, body []byte, now time.Time) (*events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription, error) {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return nil, errUnsigned
	}
	alg, rest, _ := strings.Cut(authz, " ")
	if alg != "AWS4-HMAC-SHA256" {
		return nil, fmt.Errorf("algorithm %q is not AWS4-HMAC-SHA256", alg)
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 || cred[4] != "aws4_request" || cred[3] != "execute-api" {
		return nil, errors.New("the credential scope is not <key>/<date>/<region>/execute-api/aws4_request")
	}
	if cred[0] != LocalCredentials.AccessKeyID {
		return nil, fmt.Errorf("access key %q is not the local stack's", cred[0])
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return nil, errors.New("no valid X-Amz-Date")
	}
	if d := now.Sub(at); d > maxClockSkew || d < -maxClockSkew {
		return nil, errors.New("the signature is expired or from the future")
	}
	// Sign a copy holding only the headers the caller signed; the signatures must agree.
	signed := strings.Split(fields["SignedHeaders"], ";")
	cp, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return nil, err
	}
	cp.Host = r.Host
	for _, h := range signed {
		switch h {
		case "host":
		case "content-length": // the signer takes it from the request, not the headers
			cp.ContentLength = int64(len(body))
		default:
			cp.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if v := r.Header.Get("X-Amz-Content-Sha256"); v != "" && v != "UNSIGNED-PAYLOAD" {
		if v != payload {
			return nil, errors.New("x-amz-content-sha256 does not match the body")
		}
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), LocalCredentials, cp, payload, cred[3], cred[2], at); err != nil {
		return nil, err
	}
	want := signatureOf(cp.Header.Get("Authorization"))
	if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(fields["Signature"])) != 1 {
		return nil, errors.New("the signature does not match")
	}
	return &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
		AccessKey: LocalCredentials.AccessKeyID, AccountID: AccountID, CallerID: LocalCredentials.AccessKeyID,
		UserARN: LocalCallerARN, UserID: LocalCredentials.AccessKeyID,
	}, nil
}

func signatureOf(authz string) string {
	_, sig, _ := strings.Cut(authz, "Signature=")
	return sig
}

// authorizeIAM verifies r's signature and, when it holds, puts the caller into ev's request context.
func authorizeIAM(r *http.Request, ev *events.APIGatewayV2HTTPRequest) bool {
	iam, err := verifySigV4(r, eventBody(*ev), time.Now())
	if err != nil {
		return false
	}
	ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: iam}
	return true
}

// eventBody is the body API Gateway received, from the event built for it.
func eventBody(ev events.APIGatewayV2HTTPRequest) []byte {
	if ev.IsBase64Encoded {
		b, _ := base64.StdEncoding.DecodeString(ev.Body)
		return b
	}
	return []byte(ev.Body)
}
