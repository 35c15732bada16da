// Command protoprint writes buf/validate/validate.proto, printed from the Go
// descriptor compiled into the protovalidate module, so proto generation
// works without the Buf Schema Registry (DESIGN.md §9).
package main

import (
	"flag"
	"fmt"
	"os"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"github.com/jhump/protoreflect/v2/protoprint"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func main() {
	out := flag.String("out", "third_party/proto", "root directory to print into")
	flag.Parse()
	p := &protoprint.Printer{}
	fd := validatepb.File_buf_validate_validate_proto
	if err := p.PrintProtosToFileSystem([]protoreflect.FileDescriptor{fd}, *out); err != nil {
		fmt.Fprintln(os.Stderr, "protoprint:", err)
		os.Exit(1)
	}
}
