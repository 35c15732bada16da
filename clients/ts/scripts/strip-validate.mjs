// Reads a buf image (a FileDescriptorSet) and writes it without
// buf/validate/validate.proto: the file is dropped, imports of it are
// removed, and the buf.validate options (extension 1159 on message, field
// and oneof options) are cleared. The generated TypeScript then neither
// embeds the validation rules nor imports their descriptors, so browsers
// do not download them; the server validates every request anyway.
// Usage: node strip-validate.mjs <in.binpb> <out.binpb>
import { readFileSync, writeFileSync } from "node:fs";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  FieldOptionsSchema,
  FileDescriptorSetSchema,
  MessageOptionsSchema,
  OneofOptionsSchema,
} from "@bufbuild/protobuf/wkt";

const validateFile = "buf/validate/validate.proto";
const validateExtensions = new Set([1159, 1160]);

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error("usage: node strip-validate.mjs <in.binpb> <out.binpb>");
  process.exit(2);
}
const set = fromBinary(FileDescriptorSetSchema, readFileSync(input));

// clean drops the buf.validate options of a message, field or oneof, and
// the options themselves when nothing else is left in them.
function clean(owner, schema) {
  const opts = owner.options;
  if (!opts?.$unknown) return;
  opts.$unknown = opts.$unknown.filter((u) => !validateExtensions.has(u.no));
  if (opts.$unknown.length === 0) delete opts.$unknown;
  if (toBinary(schema, opts).length === 0) owner.options = undefined;
}

function cleanMessage(m) {
  clean(m, MessageOptionsSchema);
  m.field.forEach((f) => clean(f, FieldOptionsSchema));
  m.oneofDecl.forEach((o) => clean(o, OneofOptionsSchema));
  m.nestedType.forEach(cleanMessage);
}

set.file = set.file.filter((f) => f.name !== validateFile);
for (const f of set.file) {
  f.dependency = f.dependency.filter((d) => d !== validateFile);
  f.messageType.forEach(cleanMessage);
}
writeFileSync(output, toBinary(FileDescriptorSetSchema, set));
