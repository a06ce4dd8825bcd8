/**
 * Named API keys for the gateway. Each key has a name (who is calling: the actor), the routes it may call,
 * and whether it may see which arm answered (`x-rollout-tag`, `x-rollout-target`) and send evaluation
 * metadata (`metadata.reference_id`): knowing its arm lets a client pick routing keys that land on the
 * canary, and choosing reference ids lets it pick how its answers are graded, so both are for evaluation
 * traffic only.
 *
 *   GATEWAY_KEYS_FILE=/etc/model-rollout/gateway-keys.json
 *   { "keys": [
 *       { "name": "support-app", "sha256": "<hex digest of the key>", "routes": ["support-bot"] },
 *       { "name": "eval-harness", "key": "sk-eval-...", "routes": ["*"], "armHeaders": true, "evaluation": true }
 *   ] }
 *
 * Keys are held as SHA-256 digests only (the file may hold digests too); a presented key is hashed and
 * forgotten, never cached. The file is re-read on SIGHUP and when it changes; a file that does not parse
 * keeps the keys in force and logs why. `GATEWAY_API_KEYS` (comma-separated, the older flat form) still
 * works: each key is named `key-<n>` and may do everything.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';

export interface ApiKeyPrincipal {
  /** Who is calling: the key's name, never the key. */
  name: string;
  /** Routes it may call; `*` is every route. */
  routes: ReadonlySet<string>;
  /**
   * May see which arm answered: `x-rollout-tag` / `x-rollout-target`, the answering model as the body's
   * `model`, and target names in errors (others get the route's name; see arm-mask.ts).
   */
  armHeaders: boolean;
  /** May send `metadata.reference_id`. */
  evaluation: boolean;
}

export function mayCallRoute(principal: ApiKeyPrincipal, route: string): boolean {
  return principal.routes.has('*') || principal.routes.has(route);
}

const hex = /^[0-9a-f]{64}$/;

/**
 * The keys file's schema, built on first use: zod (about 10 MB of resident memory) loads only in a gateway
 * that reads a keys file, not in one given its keys in code or by `GATEWAY_API_KEYS`. (Required, not
 * imported: parsing stays synchronous, as the store's callers expect.)
 */
let schema: ReturnType<typeof buildSchema> | undefined;
function keysFileSchema() {
  schema ??= buildSchema(createRequire(import.meta.url)('zod') as typeof import('zod'));
  return schema;
}

function buildSchema({ z }: typeof import('zod')) {
  const keyEntry = z
    .strictObject({
      name: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$/, 'letters, digits and . _ : @ - (up to 64)'),
      key: z.string().min(16, 'a key must be at least 16 characters').optional(),
      sha256: z.string().regex(hex, 'the hex SHA-256 digest of the key (64 characters)').optional(),
      routes: z.array(z.string().min(1)).min(1, 'name the routes this key may call, or "*"'),
      armHeaders: z.boolean().default(false),
      evaluation: z.boolean().default(false),
    })
    .refine((k) => (k.key === undefined) !== (k.sha256 === undefined), {
      message: 'give either "key" or "sha256", not both',
    });
  return z.strictObject({ keys: z.array(keyEntry) });
}

export class ApiKeysError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApiKeysError';
  }
}

type Table = Map<string, ApiKeyPrincipal>; // hex digest -> principal

/** Parses a keys file's text; errors name the entry and field, never a key. */
export function parseApiKeys(text: string, source = 'gateway keys'): Table {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ApiKeysError(`${source}: not valid JSON`);
  }
  const parsed = keysFileSchema().safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ApiKeysError(`${source}: ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
  }
  const table: Table = new Map();
  const names = new Set<string>();
  for (const [i, k] of parsed.data.keys.entries()) {
    if (names.has(k.name)) throw new ApiKeysError(`${source}: keys.${i}.name: "${k.name}" is used twice`);
    names.add(k.name);
    const digest = k.sha256 ?? sha256Hex(k.key!);
    if (table.has(digest)) throw new ApiKeysError(`${source}: keys.${i}: the same key as another entry`);
    table.set(digest, {
      name: k.name,
      routes: new Set(k.routes),
      armHeaders: k.armHeaders,
      evaluation: k.evaluation,
    });
  }
  return table;
}

/** The older flat list: every key may do everything (what the gateway did before named keys). */
export function flatApiKeys(keys: string[]): Table {
  return new Map(
    keys.map((key, i) => [
      sha256Hex(key),
      { name: `key-${i + 1}`, routes: new Set(['*']), armHeaders: true, evaluation: true },
    ]),
  );
}

export interface ApiKeyStore {
  /** The principal of a presented key, or undefined. Constant-time in the key's digest. */
  lookup(key: string): ApiKeyPrincipal | undefined;
  /** Re-reads the file (no-op for keys given in code); throws, keeping the old keys, when it is invalid. */
  reload(): void;
  readonly size: number;
  close(): void;
}

export interface ApiKeyStoreOptions {
  /** A keys file (re-read on SIGHUP and on change). */
  file?: string;
  /** Keys given in code or the flat `GATEWAY_API_KEYS` list. */
  flat?: string[];
  /** Re-read the file on SIGHUP and when it changes (default true for a file). */
  watch?: boolean;
  /** How often the file's mtime is checked (default 1000 ms). */
  watchIntervalMs?: number;
  onReload?: (result: { ok: true; keys: number } | { ok: false; error: string }) => void;
}

export function createApiKeyStore(options: ApiKeyStoreOptions): ApiKeyStore {
  // Only what the closures need is kept: `options` itself would keep a `flat` list of keys in plain text.
  const { file, onReload } = options;
  let table: Table = file ? readFile(file) : flatApiKeys(options.flat ?? []);

  const reload = () => {
    if (!file) return;
    table = readFile(file);
  };
  const tryReload = () => {
    try {
      reload();
      onReload?.({ ok: true, keys: table.size });
    } catch (err) {
      onReload?.({ ok: false, error: (err as Error).message });
    }
  };
  const watching = file !== undefined && (options.watch ?? true);
  if (watching) {
    process.on('SIGHUP', tryReload);
    fs.watchFile(file, { interval: options.watchIntervalMs ?? 1000 }, (now, before) => {
      if (now.mtimeMs !== before.mtimeMs || now.size !== before.size) tryReload();
    });
  }

  return {
    lookup(key) {
      // Hashed on every request, never cached by the key itself: a cache of presented keys held them in
      // plain text (a heap snapshot or core dump gave working keys). The one-shot SHA-256 costs 1.2-2.2 us a
      // lookup (the plain-text cache: 0.03-0.1 us; bench/api-keys.ts, 2 cores at load 23). A cache keyed by
      // a 128-bit SipHash-1-3 computed in JavaScript would save about 0.7 us of that, but a dump holding its
      // key lets one craft a matching string; a digest gives nothing but brute force. Map lookup by digest:
      // an attacker cannot time their way to a key from a hash they do not know.
      return table.get(digestOf(key));
    },
    reload,
    get size() {
      return table.size;
    },
    close() {
      if (!watching) return;
      process.off('SIGHUP', tryReload);
      fs.unwatchFile(file!);
    },
  };
}

/** The store from the environment: `GATEWAY_KEYS_FILE`, else `GATEWAY_API_KEYS`; undefined when neither. */
export function apiKeyStoreFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  onReload?: ApiKeyStoreOptions['onReload'],
): ApiKeyStore | undefined {
  if (env.GATEWAY_KEYS_FILE) return createApiKeyStore({ file: env.GATEWAY_KEYS_FILE, onReload });
  const flat = (env.GATEWAY_API_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  return flat.length > 0 ? createApiKeyStore({ flat }) : undefined;
}

function readFile(file: string): Table {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ApiKeysError(
      `GATEWAY_KEYS_FILE (${file}): cannot read it: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
  return parseApiKeys(text, `GATEWAY_KEYS_FILE (${file})`);
}

export function sha256Hex(key: string): string {
  return crypto.createHash('sha256').update(key).digest('hex');
}

/** `crypto.hash` (Node 20.12+) is the one-shot form: no Hash object per call, about half the time. */
const digestOf: (key: string) => string =
  typeof crypto.hash === 'function' ? (key) => crypto.hash('sha256', key, 'hex') : sha256Hex;
