/**
 * `model-rollout simulator [--port N] [--scenario file.json]`: the provider simulator (OpenAI- and
 * Anthropic-compatible, scripted latency, errors and answer quality) until Ctrl-C. Point the gateway and the
 * worker at it with `--simulator URL`.
 */
import type { Command } from 'commander';
import { UsageError } from '../errors';
import { untilInterrupted } from '../signals';

export function registerSimulatorCommand(program: Command): void {
  program
    .command('simulator')
    .description(
      'Run the provider simulator (OpenAI and Anthropic wire formats, scripted behaviour) until Ctrl-C',
    )
    .option('--port <port>', 'port to listen on (0: any free port)', '4010')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--scenario <file.json>', 'scripted behaviour per model (latency, errors, accuracy)')
    .option('--json', 'print the base URLs as one JSON line')
    .addHelpText('after', '\nExample:\n  model-rollout simulator --port 4010 --scenario scenario.json')
    .action(async (opts: { port: string; host: string; scenario?: string; json?: boolean }) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new UsageError(`--port must be a port number (0-65535), got ${opts.port}`);
      const { loadScenarioFile, ScenarioValidationError, startSimulator } =
        await import('../../tooling/simulator');
      let scenario;
      try {
        scenario = opts.scenario ? loadScenarioFile(opts.scenario) : undefined;
      } catch (err) {
        if (err instanceof ScenarioValidationError) throw new UsageError(`invalid scenario ${err.message}`);
        throw err;
      }
      let simulator;
      try {
        simulator = await startSimulator({ port, host: opts.host, scenario });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE')
          throw new Error(
            `port ${port} on ${opts.host} is in use; pick another with --port (0: any free port)`,
          );
        throw err;
      }
      if (opts.json) {
        console.log(
          JSON.stringify({
            url: simulator.url,
            openaiBaseUrl: simulator.openaiBaseUrl,
            anthropicBaseUrl: simulator.anthropicBaseUrl,
          }),
        );
      } else {
        console.log(
          `simulator:          ${simulator.url}${opts.scenario ? ` (scenario ${opts.scenario})` : ''}`,
        );
        console.log(`OpenAI base URL:    ${simulator.openaiBaseUrl}`);
        console.log(`Anthropic base URL: ${simulator.anthropicBaseUrl}`);
        console.log(`use it with:        model-rollout gateway --simulator ${simulator.url}`);
        console.log(`                    model-rollout worker --simulator ${simulator.url}`);
        console.log('Press Ctrl-C to stop.');
      }
      await untilInterrupted();
      const stats = simulator.stats();
      await simulator.close();
      if (!opts.json) console.log(`served ${stats.requests} request(s)`);
    });
}
