package main

import (
	"cmp"
	"context"
	"errors"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/proto/cairn/v1/cairnv1connect"
)

var (
	webhookCols  = cols("ID", "id", "URL", "url", "EVENTS", "events", "ENABLED", "enabled", "PAUSED", "pausedAt", "FAILURES", "failuresInRow")
	deliveryCols = cols("ID", "id", "SEQ", "eventSeq", "EVENT", "event", "ATTEMPT", "attempt", "STATUS", "responseStatus", "OK", "success",
		"MS", "durationMs", "ERROR", "error")
)

// pagedAll gathers every page of a list that answers next-page tokens.
func pagedAll(e *cliEnv, c []column, page func(token string) ([]proto.Message, string, error)) error {
	var all []proto.Message
	token := ""
	for {
		items, next, err := page(token)
		if err != nil {
			return err
		}
		all = append(all, items...)
		if next == "" {
			return e.printList(c, all)
		}
		token = next
	}
}

func webhooksCmd(e *cliEnv) *cobra.Command {
	wh := func(r *remote) cairnv1connect.WebhooksServiceClient {
		return cairnv1connect.NewWebhooksServiceClient(r.client)
	}
	var name, url string
	var events []string
	var disabled bool
	create := e.withArg("create ID", "Create a webhook (prints its signing secret, once)",
		`  cairn webhooks create orders --project acme --url https://example.com/hooks/cairn \
    --event 'databases.*.collections.orders.documents.*.create'`,
		func(ctx context.Context, r *remote, id string) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			enabled := !disabled
			res, err := wh(r).CreateWebhook(r.ctx(ctx), &cairnv1.CreateWebhookRequest{ProjectId: project, WebhookId: id, Name: cmp.Or(name, id),
				Url: url, Events: &cairnv1.WebhookEvents{Events: events}, Enabled: &enabled})
			if err != nil {
				return err
			}
			return e.printOne(cols("ID", "webhook.id", "URL", "webhook.url", "EVENTS", "webhook.events", "SECRET", "secret"), res)
		})
	create.Flags().StringVar(&name, "name", "", "display name (default the id)")
	create.Flags().StringVar(&url, "url", "", "http(s) URL the events are POSTed to")
	create.Flags().StringArrayVar(&events, "event", nil, "an event name with * wildcards, repeatable")
	create.Flags().BoolVar(&disabled, "disabled", false, "create it disabled")

	list := &cobra.Command{
		Use: "list", Short: "List a project's webhooks", Example: "  cairn webhooks list --project acme", Args: cobra.NoArgs,
		RunE: e.call(func(ctx context.Context, r *remote) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			return pagedAll(e, webhookCols, func(token string) ([]proto.Message, string, error) {
				res, err := wh(r).ListWebhooks(r.ctx(ctx), &cairnv1.ListWebhooksRequest{ProjectId: project, PageSize: 1000, PageToken: token})
				return messages(res.GetWebhooks()), res.GetNextPageToken(), err
			})
		}),
	}
	get := e.withArg("get ID", "Show a webhook: state, failures in a row, where deliveries started", "  cairn webhooks get orders --project acme",
		func(ctx context.Context, r *remote, id string) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			res, err := wh(r).GetWebhook(r.ctx(ctx), &cairnv1.GetWebhookRequest{ProjectId: project, WebhookId: id})
			if err != nil {
				return err
			}
			return e.printOne(append(webhookCols, cols("REASON", "pausedReason", "CREATED_SEQ", "createdSequence", "REDELIVERED_FROM", "redeliverFrom")...), res.GetWebhook())
		})

	var uName, uURL string
	var uEvents []string
	var enable, disable, rotate bool
	update := e.withArg("update ID", "Change a webhook; --enable also resumes a paused one",
		`  cairn webhooks update orders --project acme --enable
  cairn webhooks update orders --project acme --rotate-secret`,
		func(ctx context.Context, r *remote, id string) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			req := &cairnv1.UpdateWebhookRequest{ProjectId: project, WebhookId: id, RotateSecret: rotate}
			if uName != "" {
				req.Name = &uName
			}
			if uURL != "" {
				req.Url = &uURL
			}
			if len(uEvents) > 0 {
				req.Events = &cairnv1.WebhookEvents{Events: uEvents}
			}
			switch {
			case enable && disable:
				return errors.New("--enable and --disable: choose one")
			case enable || disable:
				req.Enabled = &enable
			}
			res, err := wh(r).UpdateWebhook(r.ctx(ctx), req)
			if err != nil {
				return err
			}
			return e.printOne(cols("ID", "webhook.id", "URL", "webhook.url", "ENABLED", "webhook.enabled", "SECRET", "secret"), res)
		})
	update.Flags().StringVar(&uName, "name", "", "new display name")
	update.Flags().StringVar(&uURL, "url", "", "new URL")
	update.Flags().StringArrayVar(&uEvents, "event", nil, "replace the event names (repeatable)")
	update.Flags().BoolVar(&enable, "enable", false, "enable (and resume a paused webhook)")
	update.Flags().BoolVar(&disable, "disable", false, "disable: its events are skipped, not queued")
	update.Flags().BoolVar(&rotate, "rotate-secret", false, "replace the signing secret (printed once)")

	del := e.withArg("delete ID", "Delete a webhook and its delivery log", "  cairn webhooks delete orders --project acme",
		func(ctx context.Context, r *remote, id string) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			if _, err := wh(r).DeleteWebhook(r.ctx(ctx), &cairnv1.DeleteWebhookRequest{ProjectId: project, WebhookId: id}); err != nil {
				return err
			}
			return e.printDone("deleted", "webhook", id)
		})
	deliveries := e.withArg("deliveries ID", "List a webhook's delivery attempts (by event, then redelivery)",
		"  cairn webhooks deliveries orders --project acme",
		func(ctx context.Context, r *remote, id string) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			return pagedAll(e, deliveryCols, func(token string) ([]proto.Message, string, error) {
				res, err := wh(r).ListWebhookDeliveries(r.ctx(ctx), &cairnv1.ListWebhookDeliveriesRequest{ProjectId: project, WebhookId: id, PageSize: 1000, PageToken: token})
				return messages(res.GetDeliveries()), res.GetNextPageToken(), err
			})
		})
	var from uint64
	redeliver := e.withArg("redeliver ID", "Deliver a webhook's events again from a stream sequence on",
		"  cairn webhooks redeliver orders --project acme --from 1042",
		func(ctx context.Context, r *remote, id string) error {
			project, err := e.needProject()
			if err != nil {
				return err
			}
			if from == 0 {
				return errors.New("--from is required: the first stream sequence to deliver again (see 'cairn webhooks deliveries')")
			}
			res, err := wh(r).RedeliverWebhook(r.ctx(ctx), &cairnv1.RedeliverWebhookRequest{ProjectId: project, WebhookId: id, FromSequence: from})
			if err != nil {
				return err
			}
			return e.printOne(cols("ID", "id", "REDELIVERY", "redelivery", "FROM", "redeliverFrom"), res.GetWebhook())
		})
	redeliver.Flags().Uint64Var(&from, "from", 0, "the first stream sequence to deliver again")
	return e.projectFlag(e.clientFlags(group("webhooks", "Manage a project's webhooks and their deliveries", "",
		create, list, get, update, del, deliveries, redeliver)))
}
