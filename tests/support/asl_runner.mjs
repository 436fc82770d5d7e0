// Runs Amazon States Language definitions in aws-local-stepfunctions with every Batch task mocked.
// stdin: {"module": path, "runs": [{"definition": {...}, "input": any,
//                                   "outcomes": {"<task state>": ["ok" | "<error name>", ...]}}, ...]}
// stdout: per run, in order: {"status": "SUCCEEDED" | "FAILED", "output"?, "error"?, "cause"?,
//                             "calls": [{"state", "parameters"}]}
// A task state runs its outcomes in order (the last repeats). The interpreter keeps no $$.State, so the
// runner keeps State.RetryCount as Step Functions does: 0 on entering a state, one more per retry.
// It is exact for flows whose tasks run one at a time, which is what the tests run.
if (typeof Promise.withResolvers !== "function") {
  // node 20 lacks it; aws-local-stepfunctions 3.0.0 calls it.
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const request = JSON.parse(readFileSync(0, "utf8"));
const { StateMachine } = await import(pathToFileURL(request.module).href);

function taskStates(machine, found) {
  for (const [name, state] of Object.entries(machine.States)) {
    if (state.Type === "Task") found.push(name);
    for (const branch of state.Branches ?? []) taskStates(branch, found);
    if (state.ItemProcessor) taskStates(state.ItemProcessor, found);
    if (state.Iterator) taskStates(state.Iterator, found);
  }
  return found;
}

async function runOne(run) {
  const calls = [];
  const seen = {};
  const state = { Name: "", RetryCount: 0 };
  const handlers = {};
  const intervals = {};
  for (const name of taskStates(run.definition, [])) {
    intervals[name] = 0;
    handlers[name] = async (parameters) => {
      calls.push({ state: name, parameters });
      const outcomes = run.outcomes?.[name] ?? ["ok"];
      const index = seen[name] ?? 0;
      seen[name] = index + 1;
      const outcome = outcomes[Math.min(index, outcomes.length - 1)];
      if (outcome === "ok") {
        state.RetryCount = 0;
        return { JobId: `job-${calls.length}`, Status: "SUCCEEDED" };
      }
      state.RetryCount += 1;
      const error = new Error(`injected ${outcome} on attempt ${index + 1}`);
      error.name = outcome;
      throw error;
    };
  }
  const machine = new StateMachine(run.definition, { validationOptions: { checkPaths: true } });
  const execution = machine.run(run.input, {
    overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides: intervals },
    context: { Execution: { Name: "run-1" }, State: state },
  });
  try {
    const output = await execution.result;
    return { status: "SUCCEEDED", output, calls };
  } catch (thrown) {
    // The interpreter wraps what failed the execution in an ExecutionError; the state's error is its cause.
    const error = thrown?.name === "ExecutionError" && thrown.cause ? thrown.cause : thrown;
    return { status: "FAILED", error: error.name, cause: String(error.message ?? error), calls };
  }
}

const answers = [];
for (const run of request.runs) answers.push(await runOne(run));
process.stdout.write(JSON.stringify(answers));
