/**
 * API objects → display records, one function per kind. The field names and
 * table columns follow the docs' samples (§9): `instances list` is
 * `METRO NAME STATE IMAGE ARGS MEMORY VCPUS FQDN CREATED`, `images list` is
 * `REF DIGEST`. Times in tables are ages against the injected clock.
 */
import type { CentralImage, Instance, LocalImage, Metro, NodeInfo, ApiItem } from '../client/index.js';
import { formatAge, formatBytes, type DisplayRecord, type DisplayValue, type View } from './output.js';

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function fqdnsOf(inst: Instance): string[] {
  return (inst.service_group?.domains ?? []).map((d) => d.fqdn).filter((f): f is string => typeof f === 'string');
}

export function instanceRecord(inst: Instance, metro: string, now: number): DisplayRecord {
  const boot = typeof inst.boot_time_us === 'number' ? `${(inst.boot_time_us / 1000).toFixed(2)} ms` : undefined;
  return {
    metro,
    name: inst.name,
    uuid: inst.uuid,
    state: inst.state,
    image: inst.image,
    args: inst.args,
    boot_time: boot,
    resources: {
      memory: typeof inst.memory_mb === 'number' ? `${inst.memory_mb} MiB` : undefined,
      vcpus: inst.vcpus,
    },
    service: inst.service_group ? { name: inst.service_group.name, domains: fqdnsOf(inst) } : undefined,
    networks: { 'private-ip': inst.private_ip, 'private-fqdn': inst.private_fqdn },
    created: inst.created_at,
    age: formatAge(inst.created_at, now),
    started: str(inst.started_at),
  };
}

export function instancesView(instances: Instance[], metro: string, now: number): View {
  return {
    records: instances.map((i) => instanceRecord(i, metro, now)),
    columns: [
      { header: 'metro', path: 'metro' },
      { header: 'name', path: 'name' },
      { header: 'state', path: 'state' },
      { header: 'image', path: 'image' },
      { header: 'args', path: 'args' },
      { header: 'memory', path: 'resources.memory' },
      { header: 'vcpus', path: 'resources.vcpus' },
      { header: 'fqdn', path: 'service.domains' },
      { header: 'created', path: 'age' },
    ],
    quiet: 'name',
    empty: 'no instances',
  };
}

/** Per-item results of start/stop/delete/wait: name, uuid, state (and the state before). */
export function changesView(items: ApiItem[]): View {
  return {
    records: items.map((i) => ({ name: str(i.name), uuid: str(i.uuid), state: str(i.state), previous_state: str(i.previous_state) })),
    columns: [
      { header: 'name', path: 'name' },
      { header: 'uuid', path: 'uuid' },
      { header: 'state', path: 'state' },
      { header: 'previous', path: 'previous_state' },
    ],
    quiet: 'name',
  };
}

export interface ImageRow {
  /** Where the image lives: `central` or the node's metro. */
  where: string;
  /** Full reference with tag: `<registry>/<owner>/<image>:<tag>`. */
  ref: string;
  digest: string;
  size?: number;
  created?: string;
}

/** Central entries (`{owner}/{registry}/{image}`) become one row per tag: `registry/owner/image:tag`. */
export function centralImageRows(images: CentralImage[]): ImageRow[] {
  const rows: ImageRow[] = [];
  for (const img of images) {
    const [owner, registry, ...rest] = img.name.split('/');
    const repo = registry !== undefined && rest.length > 0 ? `${registry}/${owner}/${rest.join('/')}` : img.name;
    for (const tag of img.tags ?? []) rows.push({ where: 'central', ref: `${repo}:${tag.name}`, digest: tag.digest });
  }
  return rows;
}

/** Node-local entries (`url` = repository@digest, short tags) become one row per tag. */
export function localImageRows(images: LocalImage[], where: string): ImageRow[] {
  const rows: ImageRow[] = [];
  for (const img of images) {
    const at = img.url.lastIndexOf('@');
    const repository = at === -1 ? img.url : img.url.slice(0, at);
    const digest = at === -1 ? '' : img.url.slice(at + 1);
    const host = repository.includes('/') ? repository.slice(0, repository.indexOf('/')) : '';
    const tags = img.tags && img.tags.length > 0 ? img.tags : [undefined];
    for (const tag of tags) {
      const ref = tag === undefined ? repository : host !== '' && !tag.startsWith(`${host}/`) && /[.:]/.test(host) ? `${host}/${tag}` : tag;
      const row: ImageRow = { where, ref, digest };
      if (typeof img.size_in_bytes === 'number') row.size = img.size_in_bytes;
      if (img.created_at !== undefined) row.created = img.created_at;
      rows.push(row);
    }
  }
  return rows;
}

export function imagesView(rows: ImageRow[]): View {
  return {
    records: rows.map((r) => ({ ref: r.ref, digest: r.digest, where: r.where, size: r.size === undefined ? undefined : formatBytes(r.size), created: r.created })),
    columns: [
      { header: 'ref', path: 'ref' },
      { header: 'digest', path: 'digest' },
      { header: 'where', path: 'where' },
      { header: 'size', path: 'size' },
    ],
    quiet: 'ref',
    empty: 'no images',
  };
}

export function metrosView(metros: Metro[]): View {
  return {
    records: metros.map((m) => ({ name: m.name, api: m.api, registry: str(m.registry), nodes: typeof m.nodes === 'number' ? m.nodes : undefined })),
    columns: [
      { header: 'name', path: 'name' },
      { header: 'api', path: 'api' },
      { header: 'registry', path: 'registry' },
      { header: 'nodes', path: 'nodes' },
    ],
    quiet: 'name',
    empty: 'no metros',
  };
}

export function nodesView(nodes: NodeInfo[], now: number): View {
  return {
    records: nodes.map((n) => ({ name: n.name, uuid: n.uuid, metro: n.metro, state: n.state, api: str(n.api), last_seen: str(n.last_seen_at), age: formatAge(str(n.last_seen_at), now) })),
    columns: [
      { header: 'name', path: 'name' },
      { header: 'metro', path: 'metro' },
      { header: 'state', path: 'state' },
      { header: 'api', path: 'api' },
      { header: 'seen', path: 'age' },
    ],
    quiet: 'name',
    empty: 'no nodes',
  };
}

/** Service groups as the gateway returns them: name, uuid, services, domains. */
export function servicesView(groups: ApiItem[]): View {
  const records = groups.map((g): DisplayRecord => {
    const services = Array.isArray(g.services)
      ? (g.services as Record<string, unknown>[]).map((s) => {
          const handlers = Array.isArray(s.handlers) ? `/${(s.handlers as string[]).join('+')}` : '';
          return `${String(s.port)}:${String(s.destination_port ?? s.port)}${handlers}`;
        })
      : [];
    const domains = Array.isArray(g.domains) ? (g.domains as Record<string, unknown>[]).map((d) => str(d.fqdn) ?? str(d.name) ?? '') : [];
    const instances = Array.isArray(g.instances) ? (g.instances as Record<string, unknown>[]).map((i) => str(i.name) ?? str(i.uuid) ?? '') : [];
    const rec: DisplayRecord = { name: str(g.name), uuid: str(g.uuid), services, domains, instances };
    if (g.soft_limit !== undefined) rec.soft_limit = g.soft_limit as DisplayValue;
    if (g.hard_limit !== undefined) rec.hard_limit = g.hard_limit as DisplayValue;
    rec.created = str(g.created_at);
    return rec;
  });
  return {
    records,
    columns: [
      { header: 'name', path: 'name' },
      { header: 'fqdn', path: 'domains' },
      { header: 'services', path: 'services' },
      { header: 'instances', path: 'instances' },
    ],
    quiet: 'name',
    empty: 'no services',
  };
}
