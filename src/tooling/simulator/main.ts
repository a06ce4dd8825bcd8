/**
 * Runs the simulator as its own process:
 *
 *   npx tsx src/tooling/simulator/main.ts [--port 0] [--host 127.0.0.1] [--scenario scenario.json]
 *
 * Prints the base URL on stdout, alone on its line, once it accepts requests (scripts wait for it).
 */
import { parseArgs } from 'node:util';
import { logger } from '../../logger';
import { loadScenarioFile } from './scenario';
import { startSimulator } from './server';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    scenario: { type: 'string' },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port must be an integer between 0 and 65535, got ${values.port}`);
  process.exit(2);
}

let scenario;
try {
  scenario = values.scenario ? loadScenarioFile(values.scenario) : undefined;
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}

const simulator = await startSimulator({ port, host: values.host, scenario });
process.stdout.write(`${simulator.url}\n`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    simulator.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'simulator did not close cleanly');
        process.exit(1);
      },
    );
  });
}
