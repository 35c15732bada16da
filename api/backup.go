package api

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cairn-dev/cairn/backup"
	"github.com/cairn-dev/cairn/streams"
)

// Online backup over plain HTTP, for the instance operator only: `cairn
// backup` lists the streams, fetches a snapshot of each and the sealed
// master key (package backup says what a backup holds).
const (
	// TrailerSnapshotInfo carries a snapshot's stream configuration and
	// state (base64 of streams.SnapshotInfo as JSON): the server knows
	// them once the snapshot has begun, after the headers.
	TrailerSnapshotInfo = "Cairn-Snapshot-Info"
	// TrailerBackupStatus is "ok" once a snapshot is complete; a client
	// that does not see it must discard what it received.
	TrailerBackupStatus = "Cairn-Backup-Status"
)

func (s *Server) mountBackup(mux *http.ServeMux) {
	mux.Handle("GET /v1/backup/streams", s.operatorOnlyJSON(http.HandlerFunc(s.serveBackupStreams), ""))
	mux.Handle("GET /v1/backup/streams/{stream}", s.operatorOnlyJSON(http.HandlerFunc(s.serveSnapshot), ""))
	mux.Handle("GET /v1/backup/keys", s.operatorOnlyJSON(http.HandlerFunc(s.serveBackupKeys), ""))
}

func (s *Server) serveBackupStreams(w http.ResponseWriter, r *http.Request) {
	names, err := s.store.StreamNames(r.Context())
	if err != nil {
		transferError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string][]string{"streams": names})
}

func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Trailer", TrailerSnapshotInfo+", "+TrailerBackupStatus)
	info, err := s.store.Snapshot(r.Context(), name, w)
	if err != nil {
		if errors.Is(err, streams.ErrNoStream) {
			// Nothing written yet: the status can still say so.
			transferError(w, http.StatusNotFound, fmt.Errorf("stream %q not found", name))
			return
		}
		w.Header().Set(TrailerBackupStatus, "failed: "+strings.ReplaceAll(err.Error(), "\n", " "))
		s.logger.ErrorContext(r.Context(), "snapshot failed", "stream", name, "err", err)
		return
	}
	b, err := json.Marshal(info)
	if err != nil {
		w.Header().Set(TrailerBackupStatus, "failed: "+err.Error())
		return
	}
	w.Header().Set(TrailerSnapshotInfo, base64.StdEncoding.EncodeToString(b))
	w.Header().Set(TrailerBackupStatus, "ok")
}

func (s *Server) serveBackupKeys(w http.ResponseWriter, r *http.Request) {
	pass := r.Header.Get(HeaderPassphrase)
	if pass == "" {
		transferError(w, http.StatusBadRequest, fmt.Errorf("%s is required: it seals the master key in the backup", HeaderPassphrase))
		return
	}
	sealed, err := backup.SealKeys(backup.Keys{MasterKey: hex.EncodeToString(s.masterKey)}, pass)
	if err != nil {
		transferError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(sealed)
}
