import { resolveBehaviour, type ResolvedBehaviour } from './behaviour';
import { createRandom, deriveSeed, type Random } from './random';
import { parseBehaviour, parseScenario, type ModelBehaviour, type Scenario } from './scenario';

export interface ReceivedRequest {
  wire: 'openai' | 'anthropic';
  body: unknown;
}

const KEEP_BODIES = 100;

export interface SimulatorStats {
  requests: number;
  byModel: Record<string, number>;
  /** Requests whose client went away before the response was complete (an aborted upstream call). */
  aborted: number;
}

/**
 * The simulator's mutable state: the behaviour of each model (start scenario plus run-time changes),
 * the request counter that seeds each request's dice, and request statistics.
 */
export class SimulatorState {
  private readonly start: Scenario;
  private defaults: ModelBehaviour | undefined;
  private models = new Map<string, ModelBehaviour>();
  /** Resolved behaviours by model, dropped whenever a behaviour changes. */
  private resolved = new Map<string, ResolvedBehaviour>();
  private counter = 0;
  private requests = 0;
  private aborted = 0;
  private byModel = new Map<string, number>();
  /** The last request bodies, newest last: what an upstream really received (for tests and demos). */
  private bodies: ReceivedRequest[] = [];
  /** Requests per model since its behaviour was last set (what `failFirst` counts). */
  private sinceSet = new Map<string, number>();

  constructor(scenario: Scenario = {}) {
    this.start = parseScenario(scenario);
    this.reset();
  }

  /** Back to the start scenario, with fresh statistics and the dice sequence from its beginning. */
  reset(): void {
    this.defaults = this.start.default;
    this.models = new Map(Object.entries(this.start.models ?? {}));
    this.resolved.clear();
    this.counter = 0;
    this.requests = 0;
    this.aborted = 0;
    this.byModel.clear();
    this.bodies = [];
    this.sinceSet.clear();
  }

  /** Replaces one model's behaviour (still layered over the scenario's default). Validated. */
  setBehaviour(model: string, behaviour: ModelBehaviour): void {
    this.models.set(model, parseBehaviour(behaviour, `behaviour of ${model}`));
    this.sinceSet.delete(model);
    this.resolved.clear();
  }

  /** Unknown models behave like the scenario's default. */
  behaviourFor(model: string): ResolvedBehaviour {
    let behaviour = this.resolved.get(model);
    if (!behaviour) {
      behaviour = resolveBehaviour(this.defaults, this.models.get(model));
      this.resolved.set(model, behaviour);
    }
    return behaviour;
  }

  /**
   * The dice for the next request: seeded by scenario seed and request number when the scenario has a
   * seed (reproducible runs), unpredictable otherwise.
   */
  nextRandom(): Random {
    const n = this.counter++;
    const seed = this.start.seed;
    return createRandom(seed === undefined ? Math.floor(Math.random() * 2 ** 32) : deriveSeed(seed, n));
  }

  /**
   * Counts every request to a chat endpoint, refused ones included (model unknown when unreadable), and
   * keeps its body; returns the how-manieth request to this model it is since its behaviour was set.
   */
  recordRequest(model: string | undefined, received?: ReceivedRequest): number {
    this.requests += 1;
    if (received) {
      this.bodies.push(received);
      if (this.bodies.length > KEEP_BODIES) this.bodies.shift();
    }
    if (model === undefined) return this.requests;
    this.byModel.set(model, (this.byModel.get(model) ?? 0) + 1);
    const n = (this.sinceSet.get(model) ?? 0) + 1;
    this.sinceSet.set(model, n);
    return n;
  }

  recordAbort(): void {
    this.aborted += 1;
  }

  /** The last request bodies received (at most 100), oldest first. */
  received(): ReceivedRequest[] {
    return [...this.bodies];
  }

  stats(): SimulatorStats {
    return { requests: this.requests, byModel: Object.fromEntries(this.byModel), aborted: this.aborted };
  }

  /** The configured behaviours (not resolved), for `GET /admin/models`. */
  snapshot(): Scenario {
    return { seed: this.start.seed, default: this.defaults, models: Object.fromEntries(this.models) };
  }
}
