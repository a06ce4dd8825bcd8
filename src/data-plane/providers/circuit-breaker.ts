/**
 * A circuit breaker per target (`provider:model`).
 *
 * closed ──N consecutive failures──> open ──cooldown elapsed──> half_open
 *   ^                                  ^                            │ exactly one trial request
 *   └───────────── trial succeeds ─────┼──────── trial fails ───────┘
 *
 * While open, calls are refused without touching the provider. In half-open, the first caller gets
 * the trial permit; everyone else is refused (`circuit_open`) until the trial reports. A trial that
 * ends without a verdict (caller cancelled, client error) hands the permit back.
 *
 * The state is lazy (no timers): `open` turns into `half_open` when someone asks after the cooldown.
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit. Default 5. */
  failureThreshold?: number;
  /** How long the circuit stays open before a trial. Default 30 000 ms. */
  cooldownMs?: number;
  /** Clock, injectable for tests. Default `Date.now`. */
  now?: () => number;
  /** Called on every state change (for logs and metrics; keep it cheap). */
  onStateChange?: (target: string, from: BreakerState, to: BreakerState) => void;
}

export interface BreakerSnapshot {
  target: string;
  state: BreakerState;
  consecutiveFailures: number;
  /** Epoch ms when the circuit last opened; undefined when it never did or is closed. */
  openedAt?: number;
  /** True while a half-open trial request is in flight. */
  trialInFlight: boolean;
  /** How many times this circuit has opened since start. */
  opens: number;
}

/** What `acquire` grants: refused, a normal call, or the single half-open trial. */
export const Permit = { Denied: 0, Normal: 1, Trial: 2 } as const;
export type Permit = (typeof Permit)[keyof typeof Permit];

interface Circuit {
  state: BreakerState;
  failures: number;
  openedAt: number;
  trialInFlight: boolean;
  opens: number;
}

export class CircuitBreaker {
  readonly failureThreshold: number;
  readonly cooldownMs: number;
  private readonly now: () => number;
  private readonly onStateChange?: CircuitBreakerOptions['onStateChange'];
  private readonly circuits = new Map<string, Circuit>();

  constructor(options: CircuitBreakerOptions = {}) {
    this.failureThreshold = Math.max(1, options.failureThreshold ?? 5);
    this.cooldownMs = Math.max(0, options.cooldownMs ?? 30_000);
    this.now = options.now ?? Date.now;
    this.onStateChange = options.onStateChange;
  }

  private circuit(target: string): Circuit {
    let circuit = this.circuits.get(target);
    if (!circuit) {
      circuit = { state: 'closed', failures: 0, openedAt: 0, trialInFlight: false, opens: 0 };
      this.circuits.set(target, circuit);
    }
    return circuit;
  }

  private transition(target: string, circuit: Circuit, to: BreakerState): void {
    const from = circuit.state;
    if (from === to) return;
    circuit.state = to;
    this.onStateChange?.(target, from, to);
  }

  /** Asks to call `target`. Every non-denied permit must be followed by exactly one report. */
  acquire(target: string): Permit {
    const circuit = this.circuit(target);
    if (circuit.state === 'closed') return Permit.Normal;
    if (circuit.state === 'open') {
      if (this.now() - circuit.openedAt < this.cooldownMs) return Permit.Denied;
      this.transition(target, circuit, 'half_open');
    }
    // half_open
    if (circuit.trialInFlight) return Permit.Denied;
    circuit.trialInFlight = true;
    return Permit.Trial;
  }

  onSuccess(target: string, permit: Permit): void {
    const circuit = this.circuit(target);
    if (permit === Permit.Trial) circuit.trialInFlight = false;
    circuit.failures = 0;
    // A normal call that started before the circuit opened and succeeds late does not close it:
    // only the trial decides.
    if (circuit.state === 'half_open' && permit === Permit.Trial) this.transition(target, circuit, 'closed');
  }

  onFailure(target: string, permit: Permit): void {
    const circuit = this.circuit(target);
    if (permit === Permit.Trial) {
      circuit.trialInFlight = false;
      this.open(target, circuit);
      return;
    }
    circuit.failures++;
    if (circuit.state === 'closed' && circuit.failures >= this.failureThreshold) this.open(target, circuit);
  }

  /** The call ended without saying anything about the provider's health (cancelled, client error). */
  release(target: string, permit: Permit): void {
    if (permit === Permit.Trial) this.circuit(target).trialInFlight = false;
  }

  private open(target: string, circuit: Circuit): void {
    circuit.openedAt = this.now();
    circuit.opens++;
    this.transition(target, circuit, 'open');
  }

  snapshot(target: string): BreakerSnapshot {
    const circuit = this.circuit(target);
    let state = circuit.state;
    if (state === 'open' && this.now() - circuit.openedAt >= this.cooldownMs) state = 'half_open';
    const snap: BreakerSnapshot = {
      target,
      state,
      consecutiveFailures: circuit.failures,
      trialInFlight: circuit.trialInFlight,
      opens: circuit.opens,
    };
    if (state !== 'closed') snap.openedAt = circuit.openedAt;
    return snap;
  }

  /** Every target seen so far. */
  snapshots(): BreakerSnapshot[] {
    return [...this.circuits.keys()].map((target) => this.snapshot(target));
  }

  reset(target?: string): void {
    if (target === undefined) this.circuits.clear();
    else this.circuits.delete(target);
  }
}
