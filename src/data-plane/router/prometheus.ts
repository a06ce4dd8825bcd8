import { Counter, Gauge, Histogram, Registry } from './prom-classes';
import type { BreakerSnapshot } from '../providers';
import type { EventWriterStats } from '../../store/event-writer';
import type { RoutingCacheHealth } from './routing-cache';
import type { RouteState } from '../../store/routing-state';

/**
 * Prometheus metrics of one router (its own Registry, so several routers in one process, as in tests,
 * never collide). Label children are cached per label tuple: prom-client hashes the label object on
 * every `inc`/`observe` otherwise, which is measurable on the hot path.
 */
export interface RouterMetricsSources {
  events: () => EventWriterStats | undefined;
  breakers: () => BreakerSnapshot[];
  routing: () => RoutingCacheHealth;
  /** The routes this router serves, from its cache. */
  routes: () => Iterable<RouteState>;
}

const BREAKER_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

export class RouterMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'tag' | 'target' | 'outcome'>;
  private readonly latency: Histogram<'route' | 'tag' | 'target'>;
  private readonly fallbacks: Counter<'route' | 'tag' | 'target' | 'depth'>;
  private readonly shadows: Counter<'route' | 'target' | 'outcome'>;
  /** Per (route, tag, target): the latency histogram child and the request counter child per outcome. */
  private readonly children = new Map<
    string,
    { latency: Histogram.Internal<'route' | 'tag' | 'target'>; outcomes: Map<string, Counter.Internal> }
  >();

  constructor(sources: RouterMetricsSources) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'model_rollout_requests_total',
      help: 'Model calls by route, tag (stable|canary|shadow), target that answered (or was tried last) and outcome (ok or error class)',
      labelNames: ['route', 'tag', 'target', 'outcome'],
      registers,
    });
    this.latency = new Histogram({
      name: 'model_rollout_request_duration_seconds',
      help: 'Latency of model calls through the fallback chain, by route, tag and target',
      labelNames: ['route', 'tag', 'target'],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.fallbacks = new Counter({
      name: 'model_rollout_fallbacks_total',
      help: 'Calls answered by a fallback target, by the target that answered and its depth in the chain (1: the first fallback)',
      labelNames: ['route', 'tag', 'target', 'depth'],
      registers,
    });
    this.shadows = new Counter({
      name: 'model_rollout_shadow_calls_total',
      help: 'Shadow calls to the candidate: outcome ok, an error class, or skipped (concurrency limit reached)',
      labelNames: ['route', 'target', 'outcome'],
      registers,
    });
    // Gauges read at scrape time: nothing to maintain on the hot path.
    new Gauge({
      name: 'model_rollout_events_dropped',
      help: 'Request events and shadow pairs dropped by the event writer since start (buffer full, Postgres failing)',
      registers,
      collect() {
        this.set(sources.events()?.dropped ?? 0);
      },
    });
    new Gauge({
      name: 'model_rollout_events_buffered',
      help: 'Request events waiting in memory to be written to Postgres',
      registers,
      collect() {
        this.set(sources.events()?.buffered ?? 0);
      },
    });
    new Gauge({
      name: 'model_rollout_events_written',
      help: 'Request events written to Postgres since start',
      registers,
      collect() {
        this.set(sources.events()?.written ?? 0);
      },
    });
    new Gauge({
      name: 'model_rollout_breaker_state',
      help: 'Circuit breaker state per target: 0 closed, 1 half-open, 2 open',
      labelNames: ['target'],
      registers,
      collect() {
        this.reset();
        for (const b of sources.breakers()) this.set({ target: b.target }, BREAKER_VALUE[b.state]);
      },
    });
    new Gauge({
      name: 'model_rollout_events_buffered_bytes',
      help: "Estimated bytes of the request events waiting in memory (bounded by the writer's maxBufferBytes)",
      registers,
      collect() {
        this.set(sources.events()?.bufferedBytes ?? 0);
      },
    });
    new Gauge({
      name: 'model_rollout_routing_staleness_seconds',
      help: 'Seconds since the cached routing state was last confirmed current (a full read, or a liveness ping of a listener that missed nothing); -1 before the first read',
      registers,
      collect() {
        const s = sources.routing().stalenessMs;
        this.set(Number.isFinite(s) ? s / 1000 : -1);
      },
    });
    new Gauge({
      name: 'model_rollout_routing_stale',
      help: '1 while the router serves from routing state it could not confirm recently (Postgres unreachable), else 0',
      registers,
      collect() {
        this.set(sources.routing().stale ? 1 : 0);
      },
    });
    // Per route, what this replica routes by: a replica whose version lags the others missed a change.
    new Gauge({
      name: 'model_rollout_routing_version',
      help: "Version of each route's routing state in this router's cache (grows by one with every change)",
      labelNames: ['route'],
      registers,
      collect() {
        this.reset();
        for (const r of sources.routes()) this.set({ route: r.name }, r.version);
      },
    });
    new Gauge({
      name: 'model_rollout_canary_share',
      help: "Share of routing keys each route sends to its candidate (0-1), from this router's cache",
      labelNames: ['route'],
      registers,
      collect() {
        this.reset();
        for (const r of sources.routes()) this.set({ route: r.name }, r.canaryBps / 10_000);
      },
    });
    new Gauge({
      name: 'model_rollout_shadow_rate',
      help: "Share of each route's stable requests also sent to the candidate as shadows (0-1), from this router's cache",
      labelNames: ['route'],
      registers,
      collect() {
        this.reset();
        for (const r of sources.routes()) this.set({ route: r.name }, r.shadowRate);
      },
    });
  }

  /** One served (stable/canary) or shadow call. `outcome` is 'ok' or the error class. */
  call(
    route: string,
    tag: string,
    target: string,
    outcome: string,
    latencyMs: number,
    fallbackDepth: number,
  ): void {
    const key = `${route}\u0000${tag}\u0000${target}`;
    let children = this.children.get(key);
    if (!children) {
      children = { latency: this.latency.labels(route, tag, target), outcomes: new Map() };
      this.children.set(key, children);
    }
    children.latency.observe(latencyMs / 1000);
    let counter = children.outcomes.get(outcome);
    if (!counter) {
      counter = this.requests.labels(route, tag, target, outcome);
      children.outcomes.set(outcome, counter);
    }
    counter.inc();
    if (fallbackDepth > 0) this.fallbacks.labels(route, tag, target, String(fallbackDepth)).inc();
  }

  shadow(route: string, target: string, outcome: string): void {
    this.shadows.labels(route, target, outcome).inc();
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
