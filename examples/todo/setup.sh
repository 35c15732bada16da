#!/usr/bin/env bash
# Creates what the todo app needs in a new project: the project, database
# "main" with collection "todos" (title, done, image; signed-in users create
# todos, each reads and writes only their own), bucket "images" (the same
# rule, images up to 10 MB) and site "todo". Then deploy the app with
#   go run ./cmd/cairn sites deploy --project PROJECT --site todo --activate examples/todo/dist
# Uses the operator key: $CAIRN_ADMIN_KEY, else cairn_data/admin.key (as the
# CLI does); the server at $CAIRN_URL (default http://localhost:8080).
# Usage: bash examples/todo/setup.sh PROJECT
set -euo pipefail
p=${1:?usage: bash examples/todo/setup.sh PROJECT}
url=${CAIRN_URL:-http://localhost:8080}
key=${CAIRN_ADMIN_KEY:-$(cat "${CAIRN_DATA_DIR:-cairn_data}/admin.key")}
call() {
  printf '%-36s ' "$1"
  curl -sS --fail-with-body "$url/cairn.v1.$1" -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' -d "$2" | head -c 160
  echo
}
ids='"projectId":"'$p'","databaseId":"main","collectionId":"todos"'
call ProjectsService/CreateProject '{"projectId":"'$p'","name":"Todos"}'
call DatabasesService/CreateDatabase '{"projectId":"'$p'","databaseId":"main","name":"Main"}'
call DatabasesService/CreateCollection '{'"$ids"',"name":"Todos","permissions":["create(\"users\")"],"documentSecurity":true}'
call DatabasesService/CreateAttribute '{'"$ids"',"attribute":{"key":"title","type":"ATTRIBUTE_TYPE_STRING","size":200,"required":true}}'
call DatabasesService/CreateAttribute '{'"$ids"',"attribute":{"key":"done","type":"ATTRIBUTE_TYPE_BOOLEAN","default":false}}'
call DatabasesService/CreateAttribute '{'"$ids"',"attribute":{"key":"image","type":"ATTRIBUTE_TYPE_STRING","size":64}}'
call StorageService/CreateBucket '{"projectId":"'$p'","bucketId":"images","name":"Images","permissions":["create(\"users\")"],"fileSecurity":true,"maximumFileSize":"10485760","allowedFileExtensions":["png","jpg","jpeg","gif","webp"]}'
call SitesService/CreateSite '{"projectId":"'$p'","siteId":"todo","name":"Todo"}'
