// The todo app with @cairn/client: sign in, list, create, toggle, delete,
// live updates, an attachment.
import { createCairn, Query } from "../src/index.js";

type Todo = { title: string; done: boolean };
const cairn = createCairn({ project: "acme" });
const todos = cairn.collection<Todo>("main", "todos");

export async function app(email: string, password: string, file: File) {
  if (!(await cairn.getAccount())) await cairn.signIn({ email, password });
  const { documents } = await todos.list({ filters: [Query.equal("done", false)], orders: ["-$createdAt"] });
  const t = await todos.create({ title: "milk", done: false });
  await todos.update(t.id, { done: true });
  await todos.delete(t.id);
  cairn.subscribe("databases.main.collections.todos.documents", (e) => console.log(e.kind, e.payload));
  const f = await cairn.upload("attachments", file, { onProgress: (p) => console.log(p.loaded / p.total) });
  return { documents, url: cairn.fileURL("attachments", f.id, { preview: { width: 64 } }) };
}
