// The same todo app with PocketBase's JS SDK.
import PocketBase from "pocketbase";

const pb = new PocketBase("https://api.example.com");

export async function app(email: string, password: string, file: File) {
  if (!pb.authStore.isValid) await pb.collection("users").authWithPassword(email, password);
  const documents = await pb.collection("todos").getFullList({ filter: "done = false", sort: "-created" });
  const t = await pb.collection("todos").create({ title: "milk", done: false });
  await pb.collection("todos").update(t.id, { done: true });
  await pb.collection("todos").delete(t.id);
  await pb.collection("todos").subscribe("*", (e) => console.log(e.action, e.record));
  const f = await pb.collection("attachments").create({ file });
  return { documents, url: pb.files.getURL(f, f["file"], { thumb: "64x0" }) };
}
