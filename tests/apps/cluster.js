// A Node.js cluster, as its users run one: the primary forks two workers
// and, by Node's default on Linux, accepts each connection itself and
// hands it to a worker over their IPC channel (a unix socket, the fd
// passed with SCM_RIGHTS). A worker that dies is replaced.
//   node cluster.js PORT      prints "READY" once both workers listen
const cluster = require('cluster');
const http = require('http');
const port = Number(process.argv[2]);
if (cluster.isPrimary) {
	let listening = 0;
	const fork = () => cluster.fork().on('listening', () => { if (++listening === 2) console.log('READY'); });
	fork();
	fork();
	cluster.on('exit', (w, code, signal) => {
		console.log(`worker ${w.process.pid} exited (${signal || code}), forking another`);
		fork();
	});
} else {
	let hits = 0;
	http.createServer((req, res) => res.end(`worker ${process.pid} hit ${++hits}\n`)).listen(port, '127.0.0.1');
}
