package projections

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/cairn-dev/cairn/proto/cairn/events/v1"
	"github.com/cairn-dev/cairn/streams"
)

// Sites: p/<project>/sites/<site> and p/<project>/deployments/<site>/<id>,
// applied from the project's stream. Every site event carries the site.

func sitesPrefix(project string) string { return projectPrefix + project + "/" + partSites }
func siteKey(project, site string) []byte {
	return []byte(sitesPrefix(project) + site)
}
func deploymentsPrefix(project, site string) string {
	return projectPrefix + project + "/" + partDeployments + site + "/"
}
func deploymentKey(project, site, id string) []byte {
	return []byte(deploymentsPrefix(project, site) + id)
}

func checkSite(sp keyspace, ev event, s *eventsv1.Site) error {
	switch {
	case sp.project == "":
		return fatal("%s seq %d: site event in the system stream", sp.stream, ev.msg.Seq)
	case s.GetId() == "" || strings.Contains(s.GetId(), "/"):
		return fatal("%s seq %d (event %s): bad site id %q", sp.stream, ev.msg.Seq, ev.env.GetId(), s.GetId())
	case s.GetProjectId() != sp.project:
		return fatal("%s seq %d (event %s): site of project %q", sp.stream, ev.msg.Seq, ev.env.GetId(), s.GetProjectId())
	}
	return nil
}

func (p *Projections) applySitePut(txn *badger.Txn, sp keyspace, ev event, s *eventsv1.Site) error {
	if err := checkSite(sp, ev, s); err != nil {
		return err
	}
	b, err := marshal(s)
	if err != nil {
		return fatal("encode site %s: %w", s.GetId(), err)
	}
	return txn.Set(siteKey(sp.project, s.GetId()), b)
}

func (p *Projections) applySiteDeleted(txn *badger.Txn, sp keyspace, ev event, s *eventsv1.Site) error {
	if err := checkSite(sp, ev, s); err != nil {
		return err
	}
	// A site keeps at most site.MaxDeployments: deleting them fits one txn.
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(deploymentsPrefix(sp.project, s.GetId()))})
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return txn.Delete(siteKey(sp.project, s.GetId()))
}

func (p *Projections) applyDeploymentCreated(txn *badger.Txn, sp keyspace, ev event, s *eventsv1.Site, d *eventsv1.Deployment) error {
	if err := p.applySitePut(txn, sp, ev, s); err != nil {
		return err
	}
	if d.GetId() == "" || strings.Contains(d.GetId(), "/") || d.GetSiteId() != s.GetId() {
		return fatal("%s seq %d (event %s): bad deployment %q of site %q", sp.stream, ev.msg.Seq, ev.env.GetId(), d.GetId(), d.GetSiteId())
	}
	b, err := marshal(d)
	if err != nil {
		return fatal("encode deployment %s: %w", d.GetId(), err)
	}
	return txn.Set(deploymentKey(sp.project, s.GetId(), d.GetId()), b)
}

func (p *Projections) applyDeploymentDeleted(txn *badger.Txn, sp keyspace, ev event, s *eventsv1.Site, d *eventsv1.Deployment) error {
	if err := p.applySitePut(txn, sp, ev, s); err != nil {
		return err
	}
	return txn.Delete(deploymentKey(sp.project, s.GetId(), d.GetId()))
}

// Site returns a project's site; ErrNotFound if there is none.
func (p *Projections) Site(project, site string) (*eventsv1.Site, error) {
	s := &eventsv1.Site{}
	if err := p.getProto(project, site, siteKey(project, site), s); err != nil {
		return nil, fmt.Errorf("site %s of project %s: %w", site, project, err)
	}
	return s, nil
}

// ListSites returns up to limit sites of a project with ids after `after`.
func (p *Projections) ListSites(project, after string, limit int) ([]*eventsv1.Site, error) {
	if err := streams.ValidateProject(project); err != nil {
		return nil, err
	}
	return listProto(p, sitesPrefix(project), after, limit, func() *eventsv1.Site { return &eventsv1.Site{} })
}

// Deployment returns a site's deployment, manifest included.
func (p *Projections) Deployment(project, site, id string) (*eventsv1.Deployment, error) {
	if strings.Contains(site, "/") {
		return nil, fmt.Errorf("site %q: %w", site, ErrNotFound)
	}
	d := &eventsv1.Deployment{}
	if err := p.getProto(project, id, deploymentKey(project, site, id), d); err != nil {
		return nil, fmt.Errorf("deployment %s of site %s: %w", id, site, err)
	}
	return d, nil
}

// ListDeployments returns up to limit deployments of a site, oldest first.
func (p *Projections) ListDeployments(project, site, after string, limit int) ([]*eventsv1.Deployment, error) {
	if err := streams.ValidateProject(project); err != nil {
		return nil, err
	}
	if site == "" || strings.Contains(site, "/") {
		return nil, nil
	}
	return listProto(p, deploymentsPrefix(project, site), after, limit, func() *eventsv1.Deployment { return &eventsv1.Deployment{} })
}

// getProto reads one read-model value of a project into m.
func (p *Projections) getProto(project, id string, key []byte, m proto.Message) error {
	if err := checkRecordID(project, id); err != nil {
		return err
	}
	err := p.get(key, func(v []byte) error { return proto.Unmarshal(v, m) })
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("projections: %w", err)
	}
	return err
}

// checkRecordID refuses a project id that is not one and, as not found, a
// record id that could reach into another key (empty, or with a "/").
func checkRecordID(project, id string) error {
	if err := streams.ValidateProject(project); err != nil {
		return err
	}
	if id == "" || strings.Contains(id, "/") {
		return ErrNotFound
	}
	return nil
}

func listProto[M proto.Message](p *Projections, prefix, after string, limit int, newM func() M) ([]M, error) {
	var out []M
	err := p.list(prefix, after, limit, func(v []byte) error {
		m := newM()
		if err := proto.Unmarshal(v, m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("projections: list %s: %w", prefix, err)
	}
	return out, nil
}

// Custom domain claims: s/domains/<domain> → DomainClaimed, in the system
// read model (a domain is unique instance-wide).

func domainKey(d string) []byte { return []byte(sysDomains + d) }

func (p *Projections) applyDomainClaimed(txn *badger.Txn, sp keyspace, ev event, c *eventsv1.DomainClaimed) error {
	if sp.project != "" || c.GetDomain() == "" || strings.Contains(c.GetDomain(), "/") {
		return fatal("%s seq %d (event %s): bad domain claim %q", sp.stream, ev.msg.Seq, ev.env.GetId(), c.GetDomain())
	}
	b, err := marshal(c)
	if err != nil {
		return fatal("encode domain claim: %w", err)
	}
	return txn.Set(domainKey(c.GetDomain()), b)
}

func (p *Projections) applyDomainReleased(txn *badger.Txn, sp keyspace, ev event, c *eventsv1.DomainReleased) error {
	if sp.project != "" {
		return fatal("%s seq %d: domain release in a project stream", sp.stream, ev.msg.Seq)
	}
	return txn.Delete(domainKey(c.GetDomain()))
}

// DomainClaim returns who holds a custom domain; ErrNotFound if nobody.
func (p *Projections) DomainClaim(d string) (*eventsv1.DomainClaimed, error) {
	if d == "" || strings.Contains(d, "/") {
		return nil, ErrNotFound
	}
	c := &eventsv1.DomainClaimed{}
	if err := p.get(domainKey(d), func(v []byte) error { return proto.Unmarshal(v, c) }); err != nil {
		return nil, err
	}
	return c, nil
}
