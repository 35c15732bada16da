package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

// usageColumns are the columns of `cairn usage`, in order (CSV header).
var usageColumns = []string{"project", "date", "events", "documents", "storage_bytes", "download_bytes", "site_bytes", "egress_bytes",
	"executions", "execution_wall_ms", "execution_cpu_us", "realtime_connection_minutes", "realtime_deliveries"}

// usageCmd is `cairn usage [--project P] [--from D] [--to D] [--csv]`: one
// row per project and UTC day, from GetProjectUsage. Without --project it
// lists every project (operator only); with it, a key of the project with
// scope usage.read (CAIRN_KEY) is enough.
func usageCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("usage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	project := fs.String("project", "", "one project (default: every project; operator only)")
	from := fs.String("from", "", "first UTC day, YYYY-MM-DD (default: 29 days before --to)")
	to := fs.String("to", "", "last UTC day, YYYY-MM-DD (default: today)")
	asCSV := fs.Bool("csv", false, "write CSV (for billing) instead of a table")
	// A project's own key may read its usage; every project needs the
	// operator. dial parses the flags, so look ahead for --project.
	operator := true
	for i, a := range args {
		if (a == "--project" || a == "-project") && i+1 < len(args) || len(a) > 10 && (a[:10] == "--project=" || a[:9] == "-project=") {
			operator = false
		}
	}
	r, err := dial(fs, args, stdout, getenv, operator)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("usage: unexpected arguments %q", fs.Args())
	}
	c := cairnv1connect.NewProjectsServiceClient(r.client)
	ids := []string{*project}
	if *project == "" {
		ids = nil
		for page := ""; ; {
			res, err := c.ListProjects(r.ctx(ctx), &cairnv1.ListProjectsRequest{PageSize: 1000, PageToken: page})
			if err != nil {
				return err
			}
			for _, p := range res.GetProjects() {
				ids = append(ids, p.GetId())
			}
			if page = res.GetNextPageToken(); page == "" {
				break
			}
		}
	}
	var rows [][]string
	for _, id := range ids {
		res, err := c.GetProjectUsage(r.ctx(ctx), &cairnv1.GetProjectUsageRequest{ProjectId: id, From: *from, To: *to})
		if err != nil {
			return fmt.Errorf("usage of %s: %w", id, err)
		}
		for _, d := range res.GetDays() {
			rows = append(rows, usageRow(id, d))
		}
	}
	if *asCSV {
		w := csv.NewWriter(stdout)
		_ = w.Write(usageColumns)
		_ = w.WriteAll(rows) // flushes
		return w.Error()
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, row := range append([][]string{usageColumns}, rows...) {
		for _, v := range row {
			fmt.Fprint(tw, v, "\t")
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func usageRow(project string, d *cairnv1.UsageDay) []string {
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	return []string{project, d.GetDate(), i(d.GetEvents()), i(d.GetDocuments()), i(d.GetStorageBytes()), i(d.GetDownloadBytes()),
		i(d.GetSiteBytes()), i(d.GetEgressBytes()), i(d.GetExecutions()), i(d.GetExecutionWallMs()), i(d.GetExecutionCpuUs()),
		strconv.FormatFloat(d.GetRealtimeConnectionMinutes(), 'f', 3, 64), i(d.GetRealtimeDeliveries())}
}
