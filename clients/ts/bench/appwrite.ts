// The same todo app with Appwrite's web SDK.
import { Client, Account, Databases, Storage, Query, ID } from "appwrite";

const client = new Client().setEndpoint("https://api.example.com/v1").setProject("acme");
const account = new Account(client);
const databases = new Databases(client);
const storage = new Storage(client);

export async function app(email: string, password: string, file: File) {
  try {
    await account.get();
  } catch {
    await account.createEmailPasswordSession(email, password);
  }
  const { documents } = await databases.listDocuments("main", "todos", [Query.equal("done", false), Query.orderDesc("$createdAt")]);
  const t = await databases.createDocument("main", "todos", ID.unique(), { title: "milk", done: false });
  await databases.updateDocument("main", "todos", t.$id, { done: true });
  await databases.deleteDocument("main", "todos", t.$id);
  client.subscribe("databases.main.collections.todos.documents", (e) => console.log(e.events, e.payload));
  const f = await storage.createFile("attachments", ID.unique(), file, undefined, (p) => console.log(p.progress));
  return { documents, url: storage.getFilePreview("attachments", f.$id, 64) };
}
