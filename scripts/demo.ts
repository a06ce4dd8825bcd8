/**
 * `npm run demo`: the main job on embedded defaults (Temporal dev server, embedded Postgres, simulated
 * providers). `--keep` leaves the stack running afterwards, with the Temporal UI to look around in.
 */
// The demo narrates itself; structured logs (alerts, breaker changes) would only repeat it. LOG_LEVEL=info shows them.
process.env.LOG_LEVEL ??= 'error';
const { runDemo } = await import('../src/tooling/demo/run-demo');
const { untilInterrupted } = await import('../src/cli/signals');

const keep = process.argv.includes('--keep');
const demo = await runDemo({ keep });
const outcomes = demo.outcomes.map((o) => o.result).join(', ');
const failed = outcomes !== 'completed, rolled_back, rolled_back';
if (failed) console.error(`[demo] unexpected outcomes: ${outcomes}`);
if (keep) {
  console.log('[demo] the stack is still running (--keep); Ctrl-C stops it');
  await untilInterrupted();
  await demo.stop();
}
process.exit(failed ? 1 : 0);
export {};
