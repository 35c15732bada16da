package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

var (
	attributeCols = cols("KEY", "key", "TYPE", "type", "SIZE", "size", "REQUIRED", "required", "ARRAY", "array", "DEFAULT", "default", "STATUS", "status")
	indexCols     = cols("KEY", "key", "TYPE", "type", "ATTRIBUTES", "attributes", "STATUS", "status")
)

// inCollection is the --database and --collection of the schema commands.
type inCollection struct{ database, collection string }

func (c *inCollection) flags(cmd *cobra.Command) *cobra.Command {
	cmd.PersistentFlags().StringVar(&c.database, "database", "", "database id")
	cmd.PersistentFlags().StringVar(&c.collection, "collection", "", "collection id")
	return cmd
}

func (c *inCollection) need(e *cliEnv) (string, error) {
	project, err := e.needProject()
	switch {
	case err != nil:
	case c.database == "":
		err = errors.New("--database is required")
	case c.collection == "":
		err = errors.New("--collection is required")
	}
	return project, err
}

// enumFlag maps a flag's lower-case word to a proto enum value.
func enumFlag(flag, prefix, word string, values map[string]int32) (int32, error) {
	v, ok := values[prefix+strings.ToUpper(word)]
	if !ok || v == 0 {
		var words []string
		for name, n := range values {
			if n != 0 {
				words = append(words, strings.ToLower(strings.TrimPrefix(name, prefix)))
			}
		}
		return 0, fmt.Errorf("--%s: want one of %s, got %q", flag, strings.Join(slices.Sorted(slices.Values(words)), ", "), word)
	}
	return v, nil
}

func attributesCmd(e *cliEnv) *cobra.Command {
	dbs := func(r *remote) cairnv1connect.DatabasesServiceClient {
		return cairnv1connect.NewDatabasesServiceClient(r.client)
	}
	var in inCollection
	var typ, def string
	var size int64
	var required, array bool
	var elements []string
	var rel cairnv1.Attribute // the relationship flags
	create := e.withArg("create KEY", "Add an attribute to a collection's schema",
		`  cairn attributes create title --project acme --database main --collection todos --type string --size 200 --required
  cairn attributes create done  --project acme --database main --collection todos --type boolean --default false
  cairn attributes create state … --type enum --elements open,closed
  cairn attributes create author … --type relationship --related-collection authors --relation manyToOne --two-way --two-way-key posts`,
		func(ctx context.Context, r *remote, key string) error {
			project, err := in.need(e)
			if err != nil {
				return err
			}
			t, err := enumFlag("type", "ATTRIBUTE_TYPE_", typ, cairnv1.AttributeType_value)
			if err != nil {
				return err
			}
			a := &cairnv1.Attribute{Key: key, Type: cairnv1.AttributeType(t), Size: size, Required: required, Array: array, Elements: elements,
				RelatedCollection: rel.RelatedCollection, RelationType: rel.RelationType, TwoWay: rel.TwoWay, TwoWayKey: rel.TwoWayKey, OnDelete: rel.OnDelete}
			if def != "" {
				var v any
				if err := json.Unmarshal([]byte(def), &v); err != nil {
					v = def // not JSON: the text itself
				}
				if a.Default, err = structpb.NewValue(v); err != nil {
					return fmt.Errorf("--default: %w", err)
				}
			}
			res, err := dbs(r).CreateAttribute(r.ctx(ctx), &cairnv1.CreateAttributeRequest{ProjectId: project, DatabaseId: in.database, CollectionId: in.collection, Attribute: a})
			if err != nil {
				return err
			}
			return e.printOne(attributeCols, res.GetAttribute())
		})
	create.Flags().StringVar(&typ, "type", "", "string, integer, float, boolean, datetime, email, url, ip, enum, point or relationship")
	create.Flags().Int64Var(&size, "size", 0, "longest value of a string, in characters")
	create.Flags().BoolVar(&required, "required", false, "every document must have it")
	create.Flags().BoolVar(&array, "array", false, "a list of values")
	create.Flags().StringVar(&def, "default", "", "value when a document has none (JSON, e.g. false or \"todo\")")
	create.Flags().StringSliceVar(&elements, "elements", nil, "the values of an enum, comma-separated")
	create.Flags().StringVar(&rel.RelatedCollection, "related-collection", "", "relationship: the collection it points to (same database)")
	create.Flags().StringVar(&rel.RelationType, "relation", "", "relationship: oneToOne, oneToMany, manyToOne or manyToMany")
	create.Flags().BoolVar(&rel.TwoWay, "two-way", false, "relationship: keep an attribute on the related collection too")
	create.Flags().StringVar(&rel.TwoWayKey, "two-way-key", "", "relationship: the key of that attribute")
	create.Flags().StringVar(&rel.OnDelete, "on-delete", "", "relationship: restrict (default), cascade or setNull")
	list := &cobra.Command{
		Use: "list", Short: "List a collection's attributes", Example: "  cairn attributes list --project acme --database main --collection todos", Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := in.need(e)
			if err != nil {
				return err
			}
			res, err := dbs(r).ListAttributes(r.ctx(ctx), &cairnv1.ListAttributesRequest{ProjectId: project, DatabaseId: in.database, CollectionId: in.collection})
			if err != nil {
				return err
			}
			all := make([]proto.Message, 0, len(res.GetAttributes()))
			for _, a := range res.GetAttributes() {
				all = append(all, a)
			}
			return e.printList(attributeCols, all)
		}),
	}
	del := e.withArg("delete KEY", "Remove an attribute (and its values) from a collection", "  cairn attributes delete done --project acme --database main --collection todos",
		func(ctx context.Context, r *remote, key string) error {
			project, err := in.need(e)
			if err != nil {
				return err
			}
			if _, err := dbs(r).DeleteAttribute(r.ctx(ctx), &cairnv1.DeleteAttributeRequest{ProjectId: project, DatabaseId: in.database, CollectionId: in.collection, Key: key}); err != nil {
				return err
			}
			return e.printDone("deleted", "attribute", key)
		})
	return e.projectFlag(e.clientFlags(in.flags(group("attributes", "Add, list and remove a collection's attributes (its schema)", "", create, list, del))))
}

func indexesCmd(e *cliEnv) *cobra.Command {
	dbs := func(r *remote) cairnv1connect.DatabasesServiceClient {
		return cairnv1connect.NewDatabasesServiceClient(r.client)
	}
	var in inCollection
	var typ string
	var attrs []string
	create := e.withArg("create KEY", "Create an index on a collection's attributes",
		`  cairn indexes create by_done --project acme --database main --collection todos --attributes done
  cairn indexes create recent … --attributes done,-$createdAt     # -ATTR: descending
  cairn indexes create by_email … --type unique --attributes email`,
		func(ctx context.Context, r *remote, key string) error {
			project, err := in.need(e)
			if err != nil {
				return err
			}
			t, err := enumFlag("type", "INDEX_TYPE_", typ, cairnv1.IndexType_value)
			if err != nil {
				return err
			}
			ix := &cairnv1.Index{Key: key, Type: cairnv1.IndexType(t)}
			for _, a := range attrs {
				name, desc := strings.CutPrefix(a, "-")
				ix.Attributes = append(ix.Attributes, name)
				ix.Desc = append(ix.Desc, desc)
			}
			res, err := dbs(r).CreateIndex(r.ctx(ctx), &cairnv1.CreateIndexRequest{ProjectId: project, DatabaseId: in.database, CollectionId: in.collection, Index: ix})
			if err != nil {
				return err
			}
			return e.printOne(indexCols, res.GetIndex())
		})
	create.Flags().StringVar(&typ, "type", "key", "key, unique or fulltext")
	create.Flags().StringSliceVar(&attrs, "attributes", nil, "attributes in order, comma-separated; -ATTR for descending")
	list := &cobra.Command{
		Use: "list", Short: "List a collection's indexes", Example: "  cairn indexes list --project acme --database main --collection todos", Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := in.need(e)
			if err != nil {
				return err
			}
			res, err := dbs(r).ListIndexes(r.ctx(ctx), &cairnv1.ListIndexesRequest{ProjectId: project, DatabaseId: in.database, CollectionId: in.collection})
			if err != nil {
				return err
			}
			all := make([]proto.Message, 0, len(res.GetIndexes()))
			for _, x := range res.GetIndexes() {
				all = append(all, x)
			}
			return e.printList(indexCols, all)
		}),
	}
	del := e.withArg("delete KEY", "Drop an index", "  cairn indexes delete by_done --project acme --database main --collection todos",
		func(ctx context.Context, r *remote, key string) error {
			project, err := in.need(e)
			if err != nil {
				return err
			}
			if _, err := dbs(r).DeleteIndex(r.ctx(ctx), &cairnv1.DeleteIndexRequest{ProjectId: project, DatabaseId: in.database, CollectionId: in.collection, Key: key}); err != nil {
				return err
			}
			return e.printDone("deleted", "index", key)
		})
	return e.projectFlag(e.clientFlags(in.flags(group("indexes", "Create, list and drop a collection's indexes", "", create, list, del))))
}
