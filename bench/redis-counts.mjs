/**
 * Loaded with `--import` into each dogged process bench/batch-distributed.ts starts (plain
 * JavaScript, so that the process needs no TypeScript loader): counts the Redis commands and
 * round trips it sends, wrapping ioredis, and writes them to the file named by
 * DOGGED_BENCH_REDIS_COUNTS when it exits. Every command serialized onto a connection is one
 * command sent (each command of a pipeline or MULTI counts, an EVALSHA counts once); one round
 * trip is a lone command, or a whole pipeline or MULTI written at once. Round trips are also
 * tallied by what they began with (command and first key, EVALSHA by its first key's last part).
 * On SIGUSR2 it writes the counts so far to the same file name with `.mark` appended.
 */
import { writeFileSync } from 'node:fs';
import { Redis, Command as RedisCommand } from 'ioredis';

const file = process.env.DOGGED_BENCH_REDIS_COUNTS;
if (file) {
  const counts = { commands: 0, roundTrips: 0, startCpuUs: -1, bySource: {} };
  const keyOf = (text) => text.replace(/^.*?:x:|^bull:[^:]*:/, '');
  const sourceOf = (command, pipelined) => {
    let name = command.name;
    if (name === 'evalsha' || name === 'eval')
      name += `(${keyOf(String(command.args[2] ?? '')).replace(/:[^:]*$/, ':*')})`;
    else if (typeof command.args[0] === 'string') name += `(${keyOf(command.args[0])})`;
    return pipelined ? `pipeline:${name}` : name;
  };
  const pipelines = new WeakSet();
  const toWritable = RedisCommand.prototype.toWritable;
  RedisCommand.prototype.toWritable = function (socket) {
    counts.commands++;
    return toWritable.call(this, socket);
  };
  const sendCommand = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function (command, stream) {
    if (counts.startCpuUs < 0) {
      const cpu = process.cpuUsage();
      counts.startCpuUs = cpu.user + cpu.system;
    }
    const before = counts.commands;
    const result = sendCommand.call(this, command, stream);
    // Written now (not queued until the connection is ready): a round trip, unless part of a
    // pipeline already counted.
    if (counts.commands > before) {
      const pipeline = stream?.isPipeline ? stream : undefined;
      let source;
      if (!pipeline) source = sourceOf(command, false);
      else if (!pipelines.has(pipeline)) {
        pipelines.add(pipeline);
        source = sourceOf(command, true);
      }
      if (source !== undefined) {
        counts.roundTrips++;
        counts.bySource[source] = (counts.bySource[source] ?? 0) + 1;
      }
    }
    return result;
  };
  process.on('exit', () => writeFileSync(file, JSON.stringify(counts)));
  // A mark (the counts so far, in FILE.mark) when the bench has warmed the process up: what the
  // measured job costs is the final counts less the mark.
  process.on('SIGUSR2', () => writeFileSync(`${file}.mark`, JSON.stringify(counts)));
}
