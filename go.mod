module github.com/cairn-dev/cairn

go 1.26.8

require (
	buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go v1.36.12-20260825204119-511051f7f437.1
	connectrpc.com/connect/v2 v2.0.2
	google.golang.org/protobuf v1.36.12
)
