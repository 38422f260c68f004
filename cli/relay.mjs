// How the `cairn` launcher runs cairn under another Node (cli/cairn.mjs, when the `node` on PATH
// is too old): as a child that stops when we are told to stop, and whose end is ours.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

/**
 * Runs `command` with `args` on our stdio, passes the signals that ask a program to stop on to it,
 * and exits as it exits: with its status, or killed by the same signal.
 *
 * Each signal must reach the child once: a node takes a second SIGINT for an impatient user's
 * and exits at once, mid-shutdown. At a terminal (stdin a TTY) the child stays in our process
 * group, so that it can read a password from the terminal and gets the terminal's Ctrl-C itself:
 * SIGINT is then not passed on. Otherwise the child gets a process group of its own (detached),
 * which no signal sent to our group reaches, and every signal comes through us.
 *
 * @param {string} command
 * @param {string[]} args
 */
export function relay(command, args) {
  const interactive = process.stdin.isTTY === true;
  const child = spawn(command, args, { stdio: 'inherit', detached: !interactive });
  /** @type {NodeJS.Signals[]} */
  const passed = interactive ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
  /** @param {NodeJS.Signals} signal */
  const pass = (signal) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const signal of passed) process.on(signal, pass);
  // The terminal's Ctrl-C reached the child too; we wait for its end rather than die first.
  const ignore = () => {};
  if (interactive) process.on('SIGINT', ignore);
  child.once('error', (err) => {
    process.stderr.write(`cairn: cannot run ${command}: ${err.message}\n`);
    process.exit(1);
  });
  child.once('exit', (code, signal) => {
    if (signal === null) process.exit(code ?? 1);
    // Killed: so are we, by the same signal, so that whoever waits on us sees how it ended.
    for (const s of passed) process.off(s, pass);
    process.off('SIGINT', ignore);
    process.kill(process.pid, signal);
    process.exit(128 + (constants.signals[signal] ?? 0)); // a signal whose default is not to end a process
  });
}
