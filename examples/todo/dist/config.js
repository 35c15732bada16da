// Where the todo app finds Cairn. Empty on a Cairn site: the site's own API
// under /_cairn/, the site's project, the session an HttpOnly cookie.
// Served from another origin (one the project lists in allowed_origins),
// name the API and the project; the session is then a bearer secret kept in
// localStorage:
//   window.todoConfig = { api: "https://api.example.com", project: "acme" };
window.todoConfig = {};
