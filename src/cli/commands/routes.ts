/**
 * `model-rollout routes`: the routing state in Postgres. `routes` lists, `routes show NAME` details one
 * route with its latest audit entries, `routes set --file route.json` creates or edits one. An edit is a
 * compare-and-set on the version it read and refuses a route a rollout owns, so it never overwrites a
 * concurrent change (a rollout step, a rollback, another operator): that is reported instead.
 * `routes release NAME` frees a route that a rollout left owned when it was terminated (no cleanup ran).
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import type { Database } from '../../store/database';
import type { RouteState, RoutePatch, RoutingChange, SlotConfig } from '../../store/routing-state';
import { UsageError } from '../errors';
import { bold, defaultActor, dim, keyValues, percent, share, table, timestamp } from '../format';

/** Opens DATABASE_URL (or the embedded database), runs `fn`, closes. A database without tables says so. */
export async function withDatabase<T>(fn: (db: Database) => Promise<T>): Promise<T> {
  const { openDatabase } = await import('../../store/database');
  const db = await openDatabase();
  try {
    return await fn(db);
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') {
      throw new Error(
        `the database ${db.url} has no model-rollout tables yet: run 'model-rollout migrate' (or start 'model-rollout worker')`,
      );
    }
    throw err;
  } finally {
    await db.close();
  }
}

/** Reads a JSON object from a file ("-": stdin); anything else is a usage error naming the file. */
export function readJsonObject(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${what}: ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new UsageError(`${what}: ${file} must hold a JSON object`);
  return value as Record<string, unknown>;
}

const target = (slot: SlotConfig | null) => (slot ? `${slot.target.provider}:${slot.target.model}` : '-');
const chain = (slot: SlotConfig | null) =>
  slot
    ? `${target(slot)}${slot.fallbacks.length ? ` (fallbacks: ${slot.fallbacks.map((f) => `${f.provider}:${f.model}`).join(', ')})` : ''}`
    : '-';

function routeJson(r: RouteState) {
  return { ...r, updatedAt: r.updatedAt.toISOString() };
}

export function registerRoutesCommand(program: Command): void {
  const routes = program
    .command('routes')
    .description('Show and edit routes (blue/green slots, stable side, canary share, shadow rate)')
    .addHelpText(
      'after',
      '\nExamples:\n  model-rollout routes\n  model-rollout routes show support-bot\n  model-rollout routes set --file examples/route.json --reason "new route"\n  model-rollout routes release support-bot --reason "rollout terminated by hand"',
    );

  routes
    .command('list', { isDefault: true })
    .description('List the routes (the default)')
    .option('--json', 'print the routes as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { listRoutes } = await import('../../store/routing-state');
      const all = await withDatabase((db) => listRoutes(db.pool));
      if (opts.json) {
        console.log(JSON.stringify(all.map(routeJson), null, 2));
        return;
      }
      if (all.length === 0) {
        console.log("no routes yet; create one with 'model-rollout routes set --file route.json'");
        return;
      }
      console.log(
        table(
          all.map((r) => {
            const candidate = r.stableSlot === 'blue' ? r.green : r.blue;
            return [
              r.name,
              `${target(r.stableSlot === 'blue' ? r.blue : r.green)} (${r.stableSlot})`,
              candidate ? target(candidate) : '-',
              share(r.canaryBps),
              percent(r.shadowRate),
              String(r.version),
              r.owner ?? '-',
            ];
          }),
          ['NAME', 'STABLE', 'CANDIDATE', 'CANARY', 'SHADOW', 'VERSION', 'OWNER'],
        ),
      );
    });

  routes
    .command('show')
    .description(
      'Show one route: slots, stable side, canary share, shadow rate, version, owner, latest audit entries',
    )
    .argument('<name>', 'route name')
    .option('--history <n>', 'how many audit entries to show', '5')
    .option('--json', 'print the route and its audit entries as JSON')
    .action(async (name: string, opts: { history: string; json?: boolean }) => {
      const history = Number(opts.history);
      if (!Number.isInteger(history) || history < 0)
        throw new UsageError(`--history must be a whole number, got ${opts.history}`);
      const { getRoute, listChanges } = await import('../../store/routing-state');
      const { route, changes } = await withDatabase(async (db) => {
        const route = await getRoute(db.pool, name);
        if (!route)
          throw new Error(
            `route "${name}" does not exist (database ${db.url}); see 'model-rollout routes' for the existing ones`,
          );
        return { route, changes: history ? await listChanges(db.pool, name, history) : [] };
      });
      if (opts.json) {
        console.log(JSON.stringify({ route: routeJson(route), changes: changes.map(changeJson) }, null, 2));
        return;
      }
      console.log(renderRoute(route, changes));
    });

  routes
    .command('set')
    .description('Create a route, or edit one (compare-and-set on the version read), from a JSON file')
    .requiredOption(
      '--file <route.json>',
      'the route config ("-" reads stdin): { name, blue, green?, stable? }',
    )
    .option('--actor <who>', 'who makes the change, for the audit trail (default cli:$USER)')
    .option('--reason <text>', 'why, for the audit trail')
    .option(
      '--expected-version <n>',
      'apply only if the route is still at this version (default: the version just read)',
    )
    .option('--json', 'print the resulting route as JSON')
    .addHelpText(
      'after',
      `
The file: { "name": "support-bot", "blue": "anthropic:claude-sonnet-4",
            "green": { "target": "openai:gpt-4o", "fallbacks": ["anthropic:claude-sonnet-4"] }, "stable": "blue" }
Slots take "provider:model" or { target, fallbacks }. On an existing route, fields left out keep their value
and "green": null removes the green slot. A route that a rollout owns cannot be edited here.`,
    )
    .action(
      async (opts: {
        file: string;
        actor?: string;
        reason?: string;
        expectedVersion?: string;
        json?: boolean;
      }) => {
        const { parseRouteConfig, InvalidRouteConfigError } = await import('../route-config');
        const raw = readJsonObject(opts.file, '--file');
        let config;
        try {
          config = parseRouteConfig(raw, opts.file === '-' ? '(stdin)' : opts.file);
        } catch (err) {
          if (err instanceof InvalidRouteConfigError) throw new UsageError(err.message);
          throw err;
        }
        // A target's baseUrl is honoured only on this deployment's allowlist: refused here, naming it.
        const { deploymentRegistry, endpointIssues, slotTargets } =
          await import('../../data-plane/providers/providers-file');
        const endpointProblems = endpointIssues(deploymentRegistry(), [
          ...slotTargets('blue', config.blue),
          ...slotTargets('green', config.green),
        ]);
        if (endpointProblems.length > 0)
          throw new UsageError(
            new InvalidRouteConfigError(opts.file === '-' ? '(stdin)' : opts.file, endpointProblems).message,
          );
        let expectedVersion: number | undefined;
        if (opts.expectedVersion !== undefined) {
          expectedVersion = Number(opts.expectedVersion);
          if (!Number.isInteger(expectedVersion) || expectedVersion < 1)
            throw new UsageError(
              `--expected-version must be a positive integer, got ${opts.expectedVersion}`,
            );
        }
        const actor = opts.actor ?? defaultActor();
        const store = await import('../../store/routing-state');
        const result = await withDatabase(async (db) => {
          const current = await store.getRoute(db.pool, config.name);
          try {
            if (!current) {
              if (expectedVersion !== undefined) {
                throw new Error(
                  `route "${config.name}" does not exist, so it cannot be at version ${expectedVersion}`,
                );
              }
              const created = await store.createRoute(
                db.pool,
                {
                  name: config.name,
                  blue: config.blue,
                  green: config.green ?? null,
                  stableSlot: config.stable ?? 'blue',
                },
                { actor, reason: opts.reason ?? `created with model-rollout routes set --file ${opts.file}` },
              );
              return { state: created, changes: [`created at version ${created.version}`] };
            }
            if (current.owner) {
              throw new Error(
                `route "${config.name}" is owned by rollout ${current.owner} (version ${current.version}); editing it would fight the rollout. ` +
                  `Wait for it to finish or roll it back ('model-rollout rollback ${config.name} --reason ...')`,
              );
            }
            const { patch, changes } = diff(current, config);
            if (
              changes.length === 0 &&
              (expectedVersion === undefined || expectedVersion === current.version)
            ) {
              return { state: current, changes: [] };
            }
            const state = await store.changeRoute(db.pool, config.name, {
              expectedVersion: expectedVersion ?? current.version,
              requireOwner: null, // a rollout that claims the route meanwhile wins; we report it
              patch,
              actor,
              reason:
                opts.reason ??
                `edited with model-rollout routes set --file ${opts.file}: ${changes.join('; ')}`,
            });
            return { state, changes: [...changes, `version ${current.version} -> ${state.version}`] };
          } catch (err) {
            if (err instanceof store.RoutingConflictError) {
              throw new Error(
                err.kind === 'version'
                  ? `route "${config.name}" changed since version ${err.expectedVersion} (it is now at version ${err.actualVersion}, owner ${err.owner ?? 'none'}); ` +
                      `nothing was written. Look at 'model-rollout routes show ${config.name}' and apply your edit again`
                  : `route "${config.name}" was claimed by rollout ${err.owner} meanwhile; nothing was written`,
              );
            }
            if (err instanceof store.RoutingValidationError)
              throw new UsageError(`invalid route config: ${err.message}`);
            if (err instanceof store.RouteExistsError) {
              throw new Error(
                `route "${config.name}" was created by someone else meanwhile; nothing was written. Run the command again to edit it`,
              );
            }
            throw err;
          }
        });
        if (opts.json) {
          console.log(JSON.stringify({ route: routeJson(result.state), changes: result.changes }, null, 2));
          return;
        }
        if (result.changes.length === 0)
          console.log(`route ${config.name}: no change (version ${result.state.version})`);
        else console.log(`route ${config.name}: ${result.changes.join('; ')}`);
      },
    );

  routes
    .command('release')
    .description(
      'Free a route left owned by a rollout that is no longer running (say, terminated): canary and shadow off, stable side kept',
    )
    .argument('<name>', 'route name')
    .requiredOption('--reason <text>', 'why, for the audit trail')
    .option('--actor <who>', 'who releases it, for the audit trail (default cli:$USER)')
    .option('--force', 'release even when Temporal cannot be reached to check that the owner has ended')
    .option('--json', 'print the resulting route as JSON')
    .addHelpText(
      'after',
      `
A rollout releases its route when it ends, even when cancelled or failed; a terminated one cannot run that
cleanup, so the route stays owned and neither 'routes set' nor a new 'start' may touch it. This clears the
owner, sets the canary share and shadow rate to 0 (the stable side serves everything) and keeps the stable
slot as it is. A route owned by a running rollout is refused: roll that rollout back instead.

Example:
  model-rollout routes release support-bot --reason "rollout terminated by hand"`,
    )
    .action(
      async (name: string, opts: { reason: string; actor?: string; force?: boolean; json?: boolean }) => {
        if (!opts.reason.trim()) throw new UsageError('--reason must not be empty');
        const actor = opts.actor ?? defaultActor();
        const store = await import('../../store/routing-state');
        const current = await withDatabase((db) => store.getRoute(db.pool, name));
        if (!current) {
          throw new Error(`route "${name}" does not exist; see 'model-rollout routes' for the existing ones`);
        }
        if (!current.owner) {
          if (opts.json) console.log(JSON.stringify({ route: routeJson(current), changes: [] }, null, 2));
          else console.log(`route ${name} has no owner (version ${current.version}); nothing to release`);
          return;
        }
        const owner = current.owner;
        // Temporal is asked outside the database session: a slow describe must not hold a connection.
        const state = await ownerState(owner, opts.force === true);
        const changes = [`owner ${owner} (${state}) -> none`];
        if (current.canaryBps) changes.push(`canary share ${share(current.canaryBps)} -> 0%`);
        if (current.shadowRate) changes.push(`shadow rate ${percent(current.shadowRate)} -> 0%`);
        const after = await withDatabase(async (db) => {
          try {
            return await store.changeRoute(db.pool, name, {
              expectedVersion: current.version,
              requireOwner: owner,
              patch: { owner: null, canaryBps: 0, shadowRate: 0 },
              actor,
              reason: `released from ${owner} (${state}): ${opts.reason} (by ${actor})`,
            });
          } catch (err) {
            if (err instanceof store.RoutingConflictError) {
              throw new Error(
                `route "${name}" changed while it was being released (now version ${err.actualVersion}, owner ${err.owner ?? 'none'}); ` +
                  `nothing was written. Look at 'model-rollout routes show ${name}'`,
              );
            }
            throw err;
          }
        });
        changes.push(`version ${current.version} -> ${after.version}`);
        if (opts.json) {
          console.log(JSON.stringify({ route: routeJson(after), changes }, null, 2));
          return;
        }
        console.log(`route ${name} released: ${changes.join('; ')}`);
        console.log(
          `stable: ${target(after.stableSlot === 'blue' ? after.blue : after.green)} (${after.stableSlot}) serves all traffic`,
        );
      },
    );
}

/**
 * Why a route's owner may be released: the owning workflow is not running. Describes it in Temporal; a
 * running owner is refused, an unreachable Temporal is refused unless `force` (the caller then vouches).
 */
async function ownerState(owner: string, force: boolean): Promise<string> {
  const { ownerExecution, withClient } = await import('./status');
  let execution;
  try {
    execution = await withClient((client) => ownerExecution(client, owner));
  } catch (err) {
    if (force) return 'not checked: Temporal unreachable, --force';
    throw new Error(
      `cannot check that rollout ${owner} is no longer running: ${(err as Error).message}. ` +
        'Pass --force to release the route anyway (only if you know the rollout is gone)',
    );
  }
  if (execution.running) {
    throw new Error(
      `rollout ${owner} (run ${execution.runId}) is still running and owns the route: roll it back ` +
        `('model-rollout rollback ${owner} --reason ...') or cancel it; 'routes release' is for a rollout that ` +
        'ended without releasing its route (a terminated one)',
    );
  }
  return execution.state;
}

/** The patch that makes `current` what `config` says, and the changes in words. */
function diff(
  current: RouteState,
  config: import('../route-config').RouteConfig,
): { patch: RoutePatch; changes: string[] } {
  const patch: RoutePatch = {};
  const changes: string[] = [];
  const same = (a: SlotConfig | null, b: SlotConfig | null) => canonical(a) === canonical(b);
  if (!same(current.blue, config.blue)) {
    patch.blue = config.blue;
    changes.push(`blue ${chain(current.blue)} => ${chain(config.blue)}`);
  }
  if (config.green !== undefined && !same(current.green, config.green)) {
    patch.green = config.green;
    changes.push(`green ${chain(current.green)} => ${chain(config.green)}`);
  }
  if (config.stable !== undefined && config.stable !== current.stableSlot) {
    patch.stableSlot = config.stable;
    changes.push(`stable ${current.stableSlot} => ${config.stable}`);
  }
  return { patch, changes };
}

/** JSON with sorted keys and no undefined values (Postgres jsonb does not keep key order). */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>)
            .filter(([, x]) => x !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

function changeJson(c: RoutingChange) {
  return {
    id: c.id,
    version: c.version,
    actor: c.actor,
    reason: c.reason,
    at: new Date(c.createdAt).toISOString(),
  };
}

function renderRoute(r: RouteState, changes: RoutingChange[]): string {
  const candidateSlot = r.stableSlot === 'blue' ? 'green' : 'blue';
  const slotLine = (name: 'blue' | 'green', slot: SlotConfig | null) =>
    `${chain(slot)}${slot ? (name === r.stableSlot ? '  [stable]' : '  [candidate]') : ''}`;
  const lines = [
    bold(r.name),
    keyValues([
      ['blue', slotLine('blue', r.blue)],
      ['green', slotLine('green', r.green)],
      ['stable side', `${r.stableSlot} (${target(r.stableSlot === 'blue' ? r.blue : r.green)})`],
      [
        'canary share',
        `${share(r.canaryBps)}${r.canaryBps ? ` of routing keys to ${candidateSlot} (${target(candidateSlot === 'blue' ? r.blue : r.green)})` : ''}`,
      ],
      [
        'shadow rate',
        `${percent(r.shadowRate)}${r.shadowRate ? ' of stable requests mirrored to the candidate' : ''}`,
      ],
      ['version', String(r.version)],
      ['owner', r.owner ?? '- (no rollout)'],
      ['updated', timestamp(r.updatedAt)],
    ]),
  ];
  if (changes.length) {
    lines.push('', bold('latest changes') + dim(' (newest first)'));
    lines.push(table(changes.map((c) => [`  v${c.version}`, timestamp(c.createdAt), c.actor, c.reason])));
  }
  return lines.join('\n');
}
