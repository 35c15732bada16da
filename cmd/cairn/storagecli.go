package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

var (
	bucketCols = cols("ID", "id", "NAME", "name", "PERMISSIONS", "permissions", "COMPRESSION", "compression", "ENCRYPTION", "encryption")
	fileCols   = cols("ID", "id", "NAME", "name", "SIZE", "size", "TYPE", "mimeType", "CREATED", "createdAt")
)

func bucketsCmd(e *cliEnv) *cobra.Command {
	st := func(r *remote) cairnv1connect.StorageServiceClient {
		return cairnv1connect.NewStorageServiceClient(r.client)
	}
	var name, compression string
	var perms []string
	var fileSecurity, encryption bool
	create := e.withArg("create ID", "Create a bucket for files",
		`  cairn buckets create docs --project acme --name Docs --permission 'read("any")' --compression zstd --encryption`,
		func(ctx context.Context, r *remote, id string) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			req := &cairnv1.CreateBucketRequest{ProjectId: project, BucketId: id, Name: cmp.Or(name, id), Permissions: perms,
				FileSecurity: fileSecurity, Encryption: encryption}
			if compression != "" {
				v, ok := cairnv1.Compression_value["COMPRESSION_"+strings.ToUpper(compression)]
				if !ok {
					return fmt.Errorf("--compression: want none, gzip or zstd, got %q", compression)
				}
				req.Compression = cairnv1.Compression(v)
			}
			res, err := st(r).CreateBucket(r.ctx(ctx), req)
			if err != nil {
				return err
			}
			return e.printOne(bucketCols, res.GetBucket())
		})
	create.Flags().StringVar(&name, "name", "", "display name (default the id)")
	create.Flags().StringArrayVar(&perms, "permission", nil, `a permission such as 'read("any")' or 'create("users")', repeatable`)
	create.Flags().BoolVar(&fileSecurity, "file-security", false, "let each file's own permissions grant access too")
	create.Flags().StringVar(&compression, "compression", "", "none, gzip or zstd")
	create.Flags().BoolVar(&encryption, "encryption", false, "encrypt files at rest")
	list := &cobra.Command{
		Use: "list", Short: "List a project's buckets", Example: "  cairn buckets list --project acme", Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			req := &cairnv1.ListBucketsRequest{ProjectId: project, Limit: 1000}
			return listAll(e, bucketCols, func(cursor string) ([]proto.Message, int, error) {
				req.CursorAfter = cursor
				res, err := st(r).ListBuckets(r.ctx(ctx), req)
				return messages(res.GetBuckets()), int(req.GetLimit()), err
			})
		}),
	}
	del := e.withArg("delete ID", "Delete a bucket and its files", "  cairn buckets delete docs --project acme", func(ctx context.Context, r *remote, id string) error {
		project, err := e.needProject()
		if err != nil {
			return err
		}
		if _, err := st(r).DeleteBucket(r.ctx(ctx), &cairnv1.DeleteBucketRequest{ProjectId: project, BucketId: id}); err != nil {
			return err
		}
		return e.printDone("deleted", "bucket", id)
	})
	return e.projectFlag(e.clientFlags(group("buckets", "Create, list and delete a project's buckets", "", create, list, del)))
}

func filesCmd(e *cliEnv) *cobra.Command {
	st := func(r *remote) cairnv1connect.StorageServiceClient {
		return cairnv1connect.NewStorageServiceClient(r.client)
	}
	var bucket string
	need := func() (string, error) {
		project, err := e.needProject()
		if err == nil && bucket == "" {
			err = errors.New("--bucket is required")
		}
		return project, err
	}
	var q queryFlags
	var search string
	list := &cobra.Command{
		Use:   "list",
		Short: "List a bucket's files",
		Example: `  cairn files list --project acme --bucket docs
  cairn files list --project acme --bucket docs --where 'size > 1000000' --order -$createdAt`,
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
			res, err := st(r).ListFiles(r.ctx(ctx), &cairnv1.ListFilesRequest{ProjectId: project, BucketId: bucket, Filters: filters, Orders: orders,
				Search: search, Limit: int32(q.limit), Offset: int32(q.offset), CursorAfter: q.after})
			if err != nil {
				return err
			}
			all := make([]proto.Message, 0, len(res.GetFiles()))
			for _, f := range res.GetFiles() {
				all = append(all, f)
			}
			return e.printList(fileCols, all)
		}),
	}
	q.flags(list.Flags())
	list.Flags().StringVar(&search, "search", "", "full-text search in names")
	get := e.withArg("get ID", "Show a file's metadata", "  cairn files get readme --project acme --bucket docs", func(ctx context.Context, r *remote, id string) error {
		project, err := need()
		if err != nil {
			return err
		}
		res, err := st(r).GetFile(r.ctx(ctx), &cairnv1.GetFileRequest{ProjectId: project, BucketId: bucket, FileId: id})
		if err != nil {
			return err
		}
		return e.printOne(fileCols, res.GetFile())
	})
	var fileID, name string
	var perms []string
	upload := &cobra.Command{
		Use:   "upload PATH",
		Short: "Upload a file (progress on a terminal)",
		Example: `  cairn files upload README.md --project acme --bucket docs --id readme
  cairn files upload photo.jpg --project acme --bucket photos --permission 'read("user:ada")'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(func(ctx context.Context, r *remote) error {
				project, err := need()
				if err != nil {
					return err
				}
				return e.upload(ctx, r, project, bucket, args[0], cmp.Or(fileID, "unique()"), cmp.Or(name, filepath.Base(args[0])), perms)
			})(cmd, args)
		},
	}
	upload.Flags().StringVar(&fileID, "id", "", "file id (default a generated one)")
	upload.Flags().StringVar(&name, "name", "", "file name (default the path's base name)")
	upload.Flags().StringArrayVar(&perms, "permission", nil, `a permission such as 'read("any")', repeatable`)
	var out string
	download := e.withArg("download ID", "Download a file's bytes (progress on a terminal)",
		`  cairn files download readme --project acme --bucket docs -o README.copy.md
  cairn files download readme --project acme --bucket docs -o - | head`,
		func(ctx context.Context, r *remote, id string) error {
			project, err := need()
			if err != nil {
				return err
			}
			return e.download(ctx, r, project, bucket, id, out)
		})
	// Named output (-o) like the format flag it shadows: here it is the file.
	download.Flags().StringVarP(&out, "output", "o", "", "file to write, - for stdout (default the file's name)")
	del := e.withArg("delete ID", "Delete a file", "  cairn files delete readme --project acme --bucket docs", func(ctx context.Context, r *remote, id string) error {
		project, err := need()
		if err != nil {
			return err
		}
		if _, err := st(r).DeleteFile(r.ctx(ctx), &cairnv1.DeleteFileRequest{ProjectId: project, BucketId: bucket, FileId: id}); err != nil {
			return err
		}
		return e.printDone("deleted", "file", id)
	})
	g := group("files", "Upload, download, list and delete a bucket's files", "", list, get, upload, download, del)
	g.PersistentFlags().StringVar(&bucket, "bucket", "", "bucket id")
	return e.projectFlag(e.clientFlags(g))
}

func (r *remote) filesURL(bucket string) string {
	return r.url + "/v1/storage/buckets/" + url.PathEscape(bucket) + "/files"
}

// upload streams path to the storage route in one request.
func (e *cliEnv) upload(ctx context.Context, r *remote, project, bucket, path, id, name string, perms []string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("files upload: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	q := url.Values{"project": {project}, "fileId": {id}, "name": {name}}
	if perms != nil {
		q["permissions"] = perms
	}
	p := newProgress(e.stderr, "uploaded", fi.Size())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.filesURL(bucket)+"?"+q.Encode(), &countingReader{r: f, p: p})
	if err != nil {
		return err
	}
	req.ContentLength = fi.Size()
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := r.http.Do(req)
	p.done()
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("files upload: %w", httpError(res))
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	file := &cairnv1.File{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, file); err != nil {
		return fmt.Errorf("files upload: answer: %w", err)
	}
	return e.printOne(fileCols, file)
}

// download writes a file's bytes to out (default its name; - is stdout),
// through a .part file renamed once complete.
func (e *cliEnv) download(ctx context.Context, r *remote, project, bucket, id, out string) error {
	u := r.filesURL(bucket) + "/" + url.PathEscape(id) + "/download?project=" + url.QueryEscape(project)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	res, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("files download %s: %w", id, httpError(res))
	}
	p := newProgress(e.stderr, "downloaded", res.ContentLength)
	defer p.done()
	if out == "-" {
		_, err := io.Copy(io.MultiWriter(e.stdout, p), res.Body)
		return err
	}
	if out == "" {
		out = id
		if _, params, err := mime.ParseMediaType(res.Header.Get("Content-Disposition")); err == nil && params["filename"] != "" {
			out = filepath.Base(params["filename"])
		}
		// A name the server chose never replaces a local file.
		if _, err := os.Lstat(out); err == nil {
			return fmt.Errorf("files download %s: %s exists; name the file to write with -o", id, out)
		}
	}
	tmp := out + ".part"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.MultiWriter(f, p), res.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, out)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("files download %s: %w", id, err)
	}
	if e.human() {
		fmt.Fprintf(e.stdout, "downloaded %s to %s (%d bytes)\n", id, out, n)
		return nil
	}
	return writeJSON(e.stdout, map[string]any{"downloaded": id, "path": out, "bytes": n})
}
