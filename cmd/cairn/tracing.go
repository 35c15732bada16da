package main

import (
	"fmt"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// newTracerProvider exports spans over OTLP/HTTP to endpoint
// (--otlp-endpoint): a base URL such as http://collector:4318, to which
// /v1/traces is added, or a URL with its own path. Nil when endpoint is
// empty: nothing is traced. The provider is passed down, never installed
// as otel's global.
func newTracerProvider(endpoint string) (*sdktrace.TracerProvider, error) {
	if endpoint == "" {
		return nil, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--otlp-endpoint: want an http(s) URL such as http://localhost:4318, got %q", endpoint)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	exp := newOTLPExporter(u.String())
	res := resource.NewSchemaless(attribute.String("service.name", "cairn"), attribute.String("service.version", version()))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
