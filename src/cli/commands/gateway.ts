import { Option, type Command } from 'commander';
import { parseRouteModes, type CaptureMode } from '../../data-plane/router/capture';
import type { Readiness } from '../../startup/wait';
import { UsageError } from '../errors';
import { untilInterrupted } from '../signals';

interface GatewayCommandOptions {
  port: string;
  host: string;
  simulator?: string;
  auth: boolean;
  capture?: boolean;
  captureRoute: string[];
  capturePrompts?: 'full' | 'redact' | 'hash';
  stableSample?: string;
  bodyLimit: string;
  pollInterval: string;
  adminPort?: string;
  adminHost: string;
  feedbackWindow: string;
}

export function registerGatewayCommand(program: Command): void {
  program
    .command('gateway')
    .description(
      'Serve the OpenAI-compatible gateway (model = route) on DATABASE_URL or the embedded database',
    )
    .option('--port <port>', 'port to listen on', '8080')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--simulator <url>', 'send every provider to the simulator at this URL (no real keys used)')
    .option(
      '--no-auth',
      'serve without API keys (otherwise GATEWAY_KEYS_FILE or GATEWAY_API_KEYS is required)',
    )
    .option(
      '--admin-port <port>',
      'serve /metrics, /healthz, /readyz and /livez on this port only (not on the public one)',
    )
    .option('--admin-host <host>', 'address of the admin listener', '127.0.0.1')
    .option(
      '--feedback-window <duration>',
      'how long after an answer POST /v1/feedback takes feedback for it (e.g. 1h, 7d)',
      '24h',
    )
    .option('--capture', 'store prompts and answers of every route (default: of routes under rollout only)')
    .option('--no-capture', 'store no prompts or answers (rollouts then get no quality scores)')
    .option(
      '--capture-route <route=mode>',
      'per-route capture: off, rollouts or all (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [],
    )
    .addOption(
      new Option('--capture-prompts <form>', 'store prompts as sent, with personal data masked, or hashed')
        .choices(['full', 'redact', 'hash'])
        .default('full'),
    )
    .option('--body-limit <bytes>', 'largest request body (images travel inline)', String(16 * 1024 * 1024))
    .option(
      '--stable-sample <rate>',
      'share of stable-arm events stored as rows, 0 < rate <= 1 (the rollups count all; default MODEL_ROLLOUT_STABLE_SAMPLE or 1)',
    )
    .option(
      '--poll-interval <ms>',
      'how often routing state is re-read in full, the safety net beside LISTEN/NOTIFY',
      '1000',
    )
    .addHelpText(
      'after',
      '\nIt waits for Postgres when it is not there yet (one line per attempt): meanwhile /healthz and /readyz' +
        '\nanswer 503 naming what it waits for, /livez 200, and requests a 503 to retry.',
    )
    .action(async (opts: GatewayCommandOptions) => {
      const port = Number(opts.port);
      const bodyLimit = Number(opts.bodyLimit);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new UsageError(`--port must be a port number, got ${opts.port}`);
      if (!Number.isInteger(bodyLimit) || bodyLimit < 1)
        throw new UsageError(`--body-limit must be a positive integer`);
      const pollIntervalMs = Number(opts.pollInterval);
      if (!Number.isInteger(pollIntervalMs) || pollIntervalMs < 10)
        throw new UsageError(`--poll-interval must be a number of milliseconds (at least 10)`);
      if (opts.auth && !process.env.GATEWAY_KEYS_FILE && !process.env.GATEWAY_API_KEYS?.trim()) {
        throw new UsageError(
          'set GATEWAY_KEYS_FILE (named keys with their routes; re-read on SIGHUP or change) or GATEWAY_API_KEYS (comma-separated keys clients send as Bearer tokens), or pass --no-auth',
        );
      }
      const { parseDuration } = await import('../../decision/config/duration');
      let feedbackWindowMs: number;
      try {
        feedbackWindowMs = parseDuration(opts.feedbackWindow);
      } catch (err) {
        throw new UsageError(`--feedback-window: ${(err as Error).message}`);
      }
      if (feedbackWindowMs < 1000) throw new UsageError('--feedback-window must be at least 1s');
      const sampleText = opts.stableSample ?? process.env.MODEL_ROLLOUT_STABLE_SAMPLE?.trim() ?? '1';
      const stableSampleRate = Number(sampleText);
      if (!(stableSampleRate > 0 && stableSampleRate <= 1))
        throw new UsageError(`--stable-sample must be a number in (0, 1], got "${sampleText}"`);
      let captureRoutes: Record<string, CaptureMode>;
      try {
        captureRoutes = parseRouteModes(opts.captureRoute);
      } catch (err) {
        throw new UsageError(`--capture-route: ${(err as Error).message}`);
      }
      const adminPort = opts.adminPort === undefined ? undefined : Number(opts.adminPort);
      if (adminPort !== undefined && (!Number.isInteger(adminPort) || adminPort < 0 || adminPort > 65535))
        throw new UsageError(`--admin-port must be a port number, got ${opts.adminPort}`);
      // Loaded here, not at the top: `--help` and the other commands must not pay for the data plane.
      const { createGateway } = await import('../../data-plane/gateway/server');
      const { simulatorRegistry } = await import('../../data-plane/providers');
      const { deploymentRegistry } = await import('../../data-plane/providers/providers-file');
      const { createRouter } = await import('../../data-plane/router/router');
      const { createRoutingCache } = await import('../../data-plane/router/routing-cache');
      const { openDatabase } = await import('../../store/database');
      const { migrate } = await import('../../store/migrate');
      const { waitForPostgres } = await import('../../store/wait-for-postgres');
      const { Readiness } = await import('../../startup/wait');
      // Provider endpoints from MODEL_ROLLOUT_PROVIDERS_FILE and the environment only; a route's target
      // naming another baseUrl is refused before its key is read. A bad file stops us before any I/O.
      const registry = opts.simulator ? simulatorRegistry(opts.simulator) : deploymentRegistry();
      const db = await openDatabase();
      // Ctrl-C or SIGTERM while it waits for Postgres ends the wait; once serving, it stops the gateway.
      let interrupted = false;
      const interruption = untilInterrupted().then(() => void (interrupted = true));
      const abort = new AbortController();
      void interruption.then(() => abort.abort(new Error('interrupted')));

      // Until Postgres answers (migrations applied, routing state read), the ports answer probes with what
      // the gateway waits for, and requests with a 503 to retry.
      const readiness = new Readiness(['postgres']);
      const starting = await listenWhileStarting(readiness, {
        port,
        host: opts.host,
        adminPort,
        adminHost: opts.adminHost,
      });
      let cache: Awaited<ReturnType<typeof createRoutingCache>>;
      try {
        cache = await waitForPostgres(
          db,
          async () => {
            await migrate(db.pool);
            return createRoutingCache({ database: db, pollIntervalMs });
          },
          { progress: (line) => console.error(line), readiness, signal: abort.signal },
        );
      } catch (err) {
        await starting.close();
        await db.close();
        if (interrupted) return;
        throw err;
      }
      const router = await createRouter({
        database: db,
        // A 429 or a 5xx gets two more tries of the same target (honouring retry-after up to 5 s)
        // before the fallbacks; streams are cut only by a 60 s silence, never by their length.
        providers: { registry, retry: { maxRetries: 2 }, streamIdleTimeoutMs: 60_000 },
        capture: {
          mode: opts.capture === true ? 'all' : opts.capture === false ? 'off' : 'rollouts',
          routes: captureRoutes,
          prompts: opts.capturePrompts,
        },
        keepRaw: true,
        cache,
        events: { stableSampleRate },
      });
      const gateway = createGateway({
        router,
        auth: opts.auth ? undefined : { disabled: true },
        bodyLimitBytes: bodyLimit,
        separateAdmin: adminPort !== undefined,
        feedbackWindowMs,
      });
      // The gateway's own server takes the ports over (a probe in between may find them closed for a moment).
      await starting.close();
      const url = await gateway.listen({ port: starting.port, host: opts.host });
      if (adminPort !== undefined) {
        const adminUrl = await gateway.listenAdmin({ port: starting.adminPort, host: opts.adminHost });
        console.log(
          `admin:    ${adminUrl}/metrics, ${adminUrl}/healthz, ${adminUrl}/readyz, ${adminUrl}/livez`,
        );
      }
      console.log(`gateway:  ${url}/v1 (model = route name)${opts.auth ? '' : '  [auth disabled]'}`);
      console.log(`postgres: ${db.url}${db.embedded ? ' (embedded)' : ''}`);
      if (opts.simulator) console.log(`providers: simulator at ${opts.simulator}`);
      console.log('Press Ctrl-C to stop.');
      await interruption;
      await gateway.close();
      await router.close();
      await cache.close();
      await db.close();
    });
}

/**
 * The gateway's ports while it waits for Postgres: `/livez`, `/readyz` and `/healthz` say what it waits for
 * (on the admin port when there is one), every other request gets an OpenAI-style 503 to retry.
 */
async function listenWhileStarting(
  readiness: Readiness,
  at: { port: number; host: string; adminPort?: number; adminHost: string },
): Promise<{ port: number; adminPort?: number; close(): Promise<void> }> {
  const { startHealthListener, json } = await import('../../startup/health-listener');
  const health = () => ({
    ready: false,
    body: {
      status: 'starting',
      serving: false,
      waitingFor: readiness.waitingFor(),
      dependencies: readiness.report(),
    },
  });
  const fallback = (_req: unknown, res: import('node:http').ServerResponse) =>
    json(
      res,
      503,
      {
        error: {
          message: `the gateway is starting: it waits for ${readiness.waitingFor().join(' and ') || 'its routing state'}`,
          type: 'server_error',
          param: null,
          code: 'gateway_starting',
        },
      },
      { 'retry-after': '1' },
    );
  const listeners = [
    await startHealthListener({
      port: at.port,
      host: at.host,
      health,
      fallback,
      probes: at.adminPort === undefined,
    }),
  ];
  if (at.adminPort !== undefined) {
    listeners.push(await startHealthListener({ port: at.adminPort, host: at.adminHost, health, fallback }));
  }
  // With port 0 the gateway's own server then takes the same ports the starting listeners got.
  const portOf = (url: string) => Number(new URL(url).port);
  return {
    port: portOf(listeners[0].url),
    adminPort: listeners[1] ? portOf(listeners[1].url) : undefined,
    close: async () => void (await Promise.all(listeners.map((l) => l.close()))),
  };
}
