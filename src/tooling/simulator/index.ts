/** The provider simulator: local OpenAI- and Anthropic-compatible servers with scripted behaviour. */
export { startSimulator, type SimulatorHandle, type SimulatorOptions } from './server';
export {
  loadScenarioFile,
  parseBehaviour,
  parseScenario,
  ScenarioValidationError,
  ERROR_KINDS,
  type ErrorKind,
  type ModelBehaviour,
  type Scenario,
  type ValidationIssue,
} from './scenario';
export type { ReceivedRequest, SimulatorStats } from './state';
export {
  loadQuestions,
  findQuestionByPrompt,
  type Question,
  type QuestionKind,
} from '../../decision/scoring/reference-set/questions';
