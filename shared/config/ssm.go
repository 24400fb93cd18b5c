package config

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// SSMFetcher reads SecureString parameters with decryption.
type SSMFetcher struct{ Client *ssm.Client }

// GetParameters fetches up to 10 names in one call (the API's limit); absent parameters are simply missing
// from the result, and Load reports the required ones.
func (f SSMFetcher) GetParameters(ctx context.Context, names []string) (map[string]string, error) {
	if f.Client == nil {
		return nil, errors.New("ssm GetParameters: no SSM client")
	}
	out := make(map[string]string, len(names))
	for start := 0; start < len(names); start += 10 {
		end := min(start+10, len(names))
		resp, err := f.Client.GetParameters(ctx, &ssm.GetParametersInput{
			Names:          names[start:end],
			WithDecryption: aws.Bool(true),
		})
		if err != nil {
			return nil, fmt.Errorf("ssm GetParameters: %w", err)
		}
		for _, p := range resp.Parameters {
			out[aws.ToString(p.Name)] = aws.ToString(p.Value)
		}
	}
	return out, nil
}
