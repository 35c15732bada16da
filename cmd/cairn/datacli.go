package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

var (
	databaseCols   = cols("ID", "id", "NAME", "name", "ENABLED", "enabled", "CREATED", "createdAt")
	collectionCols = cols("ID", "id", "NAME", "name", "PERMISSIONS", "permissions", "DOCUMENT SECURITY", "documentSecurity", "CREATED", "createdAt")
	documentCols   = cols("ID", "id", "DATA", "data", "PERMISSIONS", "permissions", "VERSION", "version", "UPDATED", "updatedAt")
)

// readAll reads a document body from stdin, at most 16 MiB.
func readAll(r io.Reader) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, 16<<20))
}

// withArg is a command taking one positional argument (an id), connected.
func (e *cliEnv) withArg(use, short, example string, do func(ctx context.Context, r *remote, arg string) error) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Example: example, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(func(ctx context.Context, r *remote) error { return do(ctx, r, args[0]) })(cmd, args)
		},
	}
}

func databasesCmd(e *cliEnv) *cobra.Command {
	dbs := func(r *remote) cairnv1connect.DatabasesServiceClient {
		return cairnv1connect.NewDatabasesServiceClient(r.client)
	}
	var name string
	create := e.withArg("create ID", "Create a database (ID may be unique() for a generated one)", `  cairn databases create main --project acme --name Main`,
		func(ctx context.Context, r *remote, id string) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			res, err := dbs(r).CreateDatabase(r.ctx(ctx), &cairnv1.CreateDatabaseRequest{ProjectId: project, DatabaseId: id, Name: cmp.Or(name, id)})
			if err != nil {
				return err
			}
			return e.printOne(databaseCols, res.GetDatabase())
		})
	create.Flags().StringVar(&name, "name", "", "display name (default the id)")
	list := &cobra.Command{
		Use: "list", Short: "List a project's databases", Example: "  cairn databases list --project acme", Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			req := &cairnv1.ListDatabasesRequest{ProjectId: project, Limit: 1000}
			return listAll(e, databaseCols, func(cursor string) ([]proto.Message, int, error) {
				req.CursorAfter = cursor
				res, err := dbs(r).ListDatabases(r.ctx(ctx), req)
				return messages(res.GetDatabases()), int(req.GetLimit()), err
			})
		}),
	}
	get := e.withArg("get ID", "Show a database", "  cairn databases get main --project acme", func(ctx context.Context, r *remote, id string) error {
		project, err := e.needProject()
		if err != nil {
			return err
		}
		res, err := dbs(r).GetDatabase(r.ctx(ctx), &cairnv1.GetDatabaseRequest{ProjectId: project, DatabaseId: id})
		if err != nil {
			return err
		}
		return e.printOne(databaseCols, res.GetDatabase())
	})
	del := e.withArg("delete ID", "Delete a database and everything in it", "  cairn databases delete main --project acme", func(ctx context.Context, r *remote, id string) error {
		project, err := e.needProject()
		if err != nil {
			return err
		}
		if _, err := dbs(r).DeleteDatabase(r.ctx(ctx), &cairnv1.DeleteDatabaseRequest{ProjectId: project, DatabaseId: id}); err != nil {
			return err
		}
		return e.printDone("deleted", "database", id)
	})
	return e.projectFlag(e.clientFlags(group("databases", "Create, list, show and delete a project's databases", "", create, list, get, del)))
}

func collectionsCmd(e *cliEnv) *cobra.Command {
	dbs := func(r *remote) cairnv1connect.DatabasesServiceClient {
		return cairnv1connect.NewDatabasesServiceClient(r.client)
	}
	var database, name string
	var perms []string
	var docSecurity bool
	need := func() (string, error) {
		project, err := e.needProject()
		if err == nil && database == "" {
			err = errors.New("--database is required")
		}
		return project, err
	}
	create := e.withArg("create ID", "Create a collection",
		`  cairn collections create todos --project acme --database main --name Todos \
    --permission 'create("users")' --permission 'read("users")' --document-security`,
		func(ctx context.Context, r *remote, id string) error {
			project, err := need()
			if err != nil {
				return err
			}
			res, err := dbs(r).CreateCollection(r.ctx(ctx), &cairnv1.CreateCollectionRequest{ProjectId: project, DatabaseId: database, CollectionId: id,
				Name: cmp.Or(name, id), Permissions: perms, DocumentSecurity: docSecurity})
			if err != nil {
				return err
			}
			return e.printOne(collectionCols, res.GetCollection())
		})
	create.Flags().StringVar(&name, "name", "", "display name (default the id)")
	create.Flags().StringArrayVar(&perms, "permission", nil, `a permission such as 'read("any")' or 'create("users")', repeatable`)
	create.Flags().BoolVar(&docSecurity, "document-security", false, "let each document's own permissions grant access too")
	list := &cobra.Command{
		Use: "list", Short: "List a database's collections", Example: "  cairn collections list --project acme --database main", Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := need()
			if err != nil {
				return err
			}
			req := &cairnv1.ListCollectionsRequest{ProjectId: project, DatabaseId: database, Limit: 1000}
			return listAll(e, collectionCols, func(cursor string) ([]proto.Message, int, error) {
				req.CursorAfter = cursor
				res, err := dbs(r).ListCollections(r.ctx(ctx), req)
				return messages(res.GetCollections()), int(req.GetLimit()), err
			})
		}),
	}
	get := e.withArg("get ID", "Show a collection with its attributes and indexes", "  cairn collections get todos --project acme --database main -o yaml",
		func(ctx context.Context, r *remote, id string) error {
			project, err := need()
			if err != nil {
				return err
			}
			res, err := dbs(r).GetCollection(r.ctx(ctx), &cairnv1.GetCollectionRequest{ProjectId: project, DatabaseId: database, CollectionId: id})
			if err != nil {
				return err
			}
			return e.printOne(collectionCols, res.GetCollection())
		})
	del := e.withArg("delete ID", "Delete a collection and its documents", "  cairn collections delete todos --project acme --database main",
		func(ctx context.Context, r *remote, id string) error {
			project, err := need()
			if err != nil {
				return err
			}
			if _, err := dbs(r).DeleteCollection(r.ctx(ctx), &cairnv1.DeleteCollectionRequest{ProjectId: project, DatabaseId: database, CollectionId: id}); err != nil {
				return err
			}
			return e.printDone("deleted", "collection", id)
		})
	g := group("collections", "Create, list, show and delete a database's collections", "", create, list, get, del)
	g.PersistentFlags().StringVar(&database, "database", "", "database id")
	return e.projectFlag(e.clientFlags(g))
}

func documentsCmd(e *cliEnv) *cobra.Command {
	dbs := func(r *remote) cairnv1connect.DatabasesServiceClient {
		return cairnv1connect.NewDatabasesServiceClient(r.client)
	}
	var database, collection, data string
	var perms []string
	var expected int64
	need := func() (string, error) {
		project, err := e.needProject()
		switch {
		case err != nil:
		case database == "":
			err = errors.New("--database is required")
		case collection == "":
			err = errors.New("--collection is required")
		}
		return project, err
	}
	permissions := func() *cairnv1.Permissions {
		if perms == nil {
			return nil
		}
		return &cairnv1.Permissions{Values: perms}
	}
	var q queryFlags
	var sel []string
	var total, explain bool
	list := &cobra.Command{
		Use:   "list",
		Short: "Query a collection's documents",
		Long:  "Lists documents matching every --where (and --filter), with the operators of ListDocuments.",
		Example: `  cairn documents list --project acme --database main --collection todos --where 'done = false'
  cairn documents list … --where 'title starts-with Ship' --where 'priority between [1,3]' --order -$createdAt --limit 10
  cairn documents list … --where 'tag = ["a","b"]'        # any of
  cairn documents list … --filter '{"op":"OPERATOR_OR","filters":[…]}' --explain -o json`,
		Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := need()
			if err != nil {
				return err
			}
			filters, orders, err := q.build()
			if err != nil {
				return err
			}
			req := &cairnv1.ListDocumentsRequest{ProjectId: project, DatabaseId: database, CollectionId: collection, Filters: filters, Orders: orders,
				Select: sel, Limit: int32(q.limit), Offset: int32(q.offset), CursorAfter: q.after, Explain: explain}
			if total {
				req.Total = &total
			}
			res, err := dbs(r).ListDocuments(r.ctx(ctx), req)
			if err != nil {
				return err
			}
			// A script asked for more than the documents: give it the
			// whole answer.
			if (total || explain) && !e.human() {
				return e.printOne(nil, res)
			}
			all := make([]proto.Message, 0, len(res.GetDocuments()))
			for _, d := range res.GetDocuments() {
				all = append(all, d)
			}
			if err := e.printList(documentCols, all); err != nil || !e.human() {
				return err
			}
			if total {
				fmt.Fprintf(e.stdout, "total: %d\n", res.GetTotal())
			}
			if explain {
				fmt.Fprintf(e.stdout, "plan: %s\n", res.GetExplain().GetPlan())
			}
			return nil
		}),
	}
	q.flags(list.Flags())
	list.Flags().StringSliceVar(&sel, "select", nil, "only these attributes, comma-separated")
	list.Flags().BoolVar(&total, "total", false, "count every match too")
	list.Flags().BoolVar(&explain, "explain", false, "show how the query ran (index, keys scanned)")
	get := e.withArg("get ID", "Show a document", "  cairn documents get 01J… --project acme --database main --collection todos",
		func(ctx context.Context, r *remote, id string) error {
			project, err := need()
			if err != nil {
				return err
			}
			res, err := dbs(r).GetDocument(r.ctx(ctx), &cairnv1.GetDocumentRequest{ProjectId: project, DatabaseId: database, CollectionId: collection, DocumentId: id})
			if err != nil {
				return err
			}
			return e.printOne(documentCols, res.GetDocument())
		})
	create := &cobra.Command{
		Use:   "create [ID]",
		Short: "Create a document (without ID one is generated)",
		Example: `  cairn documents create --project acme --database main --collection todos --data '{"title":"Ship it"}'
  cairn documents create todo-1 … --data @todo.json --permission 'read("any")'
  echo '{"title":"x"}' | cairn documents create … --data -`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(func(ctx context.Context, r *remote) error {
				project, err := need()
				if err != nil {
					return err
				}
				in := &cairnv1.DocumentInput{DocumentId: "unique()", Permissions: permissions()}
				if len(args) == 1 {
					in.DocumentId = args[0]
				}
				if in.Data, err = e.jsonArg("data", cmp.Or(data, "{}")); err != nil {
					return err
				}
				res, err := dbs(r).CreateDocument(r.ctx(ctx), &cairnv1.CreateDocumentRequest{ProjectId: project, DatabaseId: database, CollectionId: collection, Document: in})
				if err != nil {
					return err
				}
				return e.printOne(documentCols, res.GetDocument())
			})(cmd, args)
		},
	}
	update := e.withArg("update ID", "Change a document's data (the attributes given) or permissions",
		`  cairn documents update 01J… --project acme --database main --collection todos --data '{"done":true}'
  cairn documents update 01J… … --data '{"done":true}' --expected-version 3   # fails if someone wrote since`,
		func(ctx context.Context, r *remote, id string) error {
			project, err := need()
			if err != nil {
				return err
			}
			req := &cairnv1.UpdateDocumentRequest{ProjectId: project, DatabaseId: database, CollectionId: collection, DocumentId: id, Permissions: permissions()}
			if data != "" {
				if req.Data, err = e.jsonArg("data", data); err != nil {
					return err
				}
			}
			if expected > 0 {
				v := uint64(expected)
				req.ExpectedVersion = &v
			}
			res, err := dbs(r).UpdateDocument(r.ctx(ctx), req)
			if err != nil {
				return err
			}
			return e.printOne(documentCols, res.GetDocument())
		})
	del := e.withArg("delete ID", "Delete a document", "  cairn documents delete 01J… --project acme --database main --collection todos",
		func(ctx context.Context, r *remote, id string) error {
			project, err := need()
			if err != nil {
				return err
			}
			req := &cairnv1.DeleteDocumentRequest{ProjectId: project, DatabaseId: database, CollectionId: collection, DocumentId: id}
			if expected > 0 {
				v := uint64(expected)
				req.ExpectedVersion = &v
			}
			if _, err := dbs(r).DeleteDocument(r.ctx(ctx), req); err != nil {
				return err
			}
			return e.printDone("deleted", "document", id)
		})
	for _, c := range []*cobra.Command{create, update} {
		c.Flags().StringVar(&data, "data", "", "the document's attributes as a JSON object, @FILE, or - for stdin")
		c.Flags().StringArrayVar(&perms, "permission", nil, `a permission such as 'read("user:ada")', repeatable`)
	}
	for _, c := range []*cobra.Command{update, del} {
		c.Flags().Int64Var(&expected, "expected-version", 0, "only if the document is still at this version")
	}
	g := group("documents", "Query, show, create, update and delete documents", "", list, get, create, update, del)
	g.PersistentFlags().StringVar(&database, "database", "", "database id")
	g.PersistentFlags().StringVar(&collection, "collection", "", "collection id")
	return e.projectFlag(e.clientFlags(g))
}
