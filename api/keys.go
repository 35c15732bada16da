package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"

	"github.com/cairn-dev/cairn/domain"
	"github.com/cairn-dev/cairn/domain/access"
	"github.com/cairn-dev/cairn/domain/apikey"
	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	cairnv1 "github.com/cairn-dev/cairn/proto/cairn/v1"
	"github.com/cairn-dev/cairn/streams/eventlog"
)

type keysHandler struct{ *Server }

func (h *keysHandler) CreateKey(ctx context.Context, req *cairnv1.CreateKeyRequest) (*cairnv1.CreateKeyResponse, error) {
	project := req.GetProjectId()
	scopes := req.GetScopes().GetScopes()
	if err := access.CanGrant(principal(ctx), scopes); err != nil {
		return nil, err
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	keyID := h.log.NewID()
	secret := make([]byte, 32)
	msgID := ""
	if meta.IdempotencyKey != "" {
		msgID = eventlog.IdempotencyMsgID(meta.Scope, meta.IdempotencyKey)
		secret = deriveSecret(h.masterKey, project, keyID, msgID)
	} else if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	cmd := apikey.Create{ID: keyID, ProjectID: project, Name: req.GetName(), Scopes: scopes,
		SecretHash: hashToken(keyToken(project, keyID, secret)), Now: h.log.Now()}
	if req.GetExpiresAt() != nil {
		cmd.ExpiresAt = req.GetExpiresAt().AsTime()
	}
	res, err := h.log.Write(ctx, eventlog.KeyAggregate(project, keyID), meta, eventlog.Decide(apikey.Evolve, func(s apikey.State) ([]*eventsv1.Envelope, error) {
		return apikey.Decide(s, cmd)
	}))
	if err != nil {
		return nil, err
	}
	k := apikey.Evolve(nil, res.Events[0])
	if res.Duplicate {
		// A retry: the first request's key, and its secret derived again.
		secret = deriveSecret(h.masterKey, project, k.GetId(), msgID)
		if !bytes.Equal(hashToken(keyToken(project, k.GetId(), secret)), k.GetSecretHash()) {
			return nil, errors.New("idempotent CreateKey: derived secret does not match the stored key")
		}
	}
	setSeq(ctx, res.Seq)
	return &cairnv1.CreateKeyResponse{Key: keyOut(k), Secret: keyToken(project, k.GetId(), secret)}, nil
}

func (h *keysHandler) GetKey(_ context.Context, req *cairnv1.GetKeyRequest) (*cairnv1.GetKeyResponse, error) {
	k, err := h.reads.Key(req.GetProjectId(), req.GetKeyId())
	if err != nil {
		return nil, notFound(err, "key")
	}
	return &cairnv1.GetKeyResponse{Key: keyOut(k)}, nil
}

func (h *keysHandler) ListKeys(_ context.Context, req *cairnv1.ListKeysRequest) (*cairnv1.ListKeysResponse, error) {
	ks, next, err := listPage(req.GetPageToken(), req.GetPageSize(), func(after string, limit int) ([]*eventsv1.Key, error) {
		return h.reads.ListKeys(req.GetProjectId(), after, limit)
	})
	if err != nil {
		return nil, err
	}
	res := &cairnv1.ListKeysResponse{NextPageToken: next}
	for _, k := range ks {
		res.Keys = append(res.Keys, keyOut(k))
	}
	return res, nil
}

// mayManage refuses to let a key change or delete a key holding scopes it
// does not hold itself: keys.write is not a way up.
func mayManage(ctx context.Context, target apikey.State) error {
	if target == nil {
		return domain.Errorf(domain.KindNotFound, "key not found")
	}
	if err := access.CanGrant(principal(ctx), target.GetScopes()); err != nil {
		return domain.Errorf(domain.KindPermissionDenied, "cannot manage a key with scopes the calling key does not hold")
	}
	return nil
}

func (h *keysHandler) UpdateKey(ctx context.Context, req *cairnv1.UpdateKeyRequest) (*cairnv1.UpdateKeyResponse, error) {
	cmd := apikey.Update{Name: req.Name, ClearExpiry: req.GetClearExpiry(), Now: h.log.Now()}
	if req.GetScopes() != nil {
		scopes := req.GetScopes().GetScopes()
		if err := access.CanGrant(principal(ctx), scopes); err != nil {
			return nil, err
		}
		cmd.Scopes = &scopes
	}
	if req.GetExpiresAt() != nil {
		cmd.ExpiresAt = req.GetExpiresAt().AsTime()
	}
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	var state apikey.State
	res, err := h.log.Write(ctx, eventlog.KeyAggregate(req.GetProjectId(), req.GetKeyId()), meta, eventlog.Decide(apikey.Evolve, func(s apikey.State) ([]*eventsv1.Envelope, error) {
		if err := mayManage(ctx, s); err != nil {
			return nil, err
		}
		state = s
		return apikey.Decide(s, cmd)
	}))
	if err != nil {
		return nil, err
	}
	if len(res.Events) > 0 {
		state = apikey.Evolve(state, res.Events[len(res.Events)-1])
	}
	setSeq(ctx, res.Seq)
	return &cairnv1.UpdateKeyResponse{Key: keyOut(state)}, nil
}

func (h *keysHandler) DeleteKey(ctx context.Context, req *cairnv1.DeleteKeyRequest) (*cairnv1.DeleteKeyResponse, error) {
	meta, err := h.meta(ctx)
	if err != nil {
		return nil, err
	}
	res, err := h.log.Write(ctx, eventlog.KeyAggregate(req.GetProjectId(), req.GetKeyId()), meta, eventlog.Decide(apikey.Evolve, func(s apikey.State) ([]*eventsv1.Envelope, error) {
		if err := mayManage(ctx, s); err != nil {
			return nil, err
		}
		return apikey.Decide(s, apikey.Delete{Now: h.log.Now()})
	}))
	if err != nil {
		return nil, err
	}
	setSeq(ctx, res.Seq)
	return &cairnv1.DeleteKeyResponse{}, nil
}
