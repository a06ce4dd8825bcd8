import { Command, CommanderError } from 'commander';
import { registerTemporalCommand } from './commands/temporal';
import { registerMigrateCommand } from './commands/migrate';
import { registerDbCommand } from './commands/db';
import { registerDevCommand } from './commands/dev';
import { registerGatewayCommand } from './commands/gateway';
import { registerWorkerCommand } from './commands/worker';
import { registerSimulatorCommand } from './commands/simulator';
import { registerRoutesCommand } from './commands/routes';
import { registerStartCommand } from './commands/start';
import { registerStatusCommand } from './commands/status';
import { registerListCommand } from './commands/list';
import { registerSignalCommands } from './commands/signals';
import { registerEventsCommand } from './commands/events';
import { registerUndoCommand } from './commands/undo';
import { registerEvalCommand } from './commands/eval';
import { UsageError } from './errors';
import { startTracing } from '../control-plane/telemetry/tracing';

/**
 * `model-rollout`: one binary for every piece (dev stack, worker, gateway, simulator) and for operating
 * rollouts. Exit codes: 0 ok, 1 failure, 2 usage.
 */
export function buildProgram(): Command {
  const program = new Command('model-rollout')
    .description('Durable rollouts and rollbacks for LLM model changes, orchestrated by Temporal.')
    .showHelpAfterError()
    .exitOverride();
  registerDevCommand(program);
  registerTemporalCommand(program);
  registerMigrateCommand(program);
  registerDbCommand(program);
  registerGatewayCommand(program);
  registerWorkerCommand(program);
  registerSimulatorCommand(program);
  registerRoutesCommand(program);
  registerStartCommand(program);
  registerStatusCommand(program);
  registerListCommand(program);
  registerSignalCommands(program);
  registerUndoCommand(program);
  registerEvalCommand(program);
  registerEventsCommand(program);
  return program;
}

/** The service name a command's spans carry unless OTEL_SERVICE_NAME names one. */
function serviceNameOf(argv: string[]): string {
  const command = argv[2];
  return command === 'worker' || command === 'gateway' ? `model-rollout-${command}` : 'model-rollout-cli';
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  // Off unless OTEL_* asks for traces; then `start`, `rollback`, ... and the workflow work they cause share a trace.
  const tracing = await startTracing(serviceNameOf(argv));
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; parse errors were already printed.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}`);
      return 2;
    }
    console.error(`error: ${(err as Error).message}`);
    return 1;
  } finally {
    await tracing?.shutdown();
  }
}

const invokedDirectly = process.argv[1] && /(?:main\.ts|model-rollout(?:\.js)?)$/.test(process.argv[1]);
if (invokedDirectly) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
