// A JVM serving HTTP (the JDK's own server, a pool of 4 threads) from a
// 16 MB array filled at start, while a thread counts every 10 ms.
//   java Ticker PORT      prints "READY" once it listens
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

public class Ticker {
	public static void main(String[] args) throws Exception {
		AtomicLong ticks = new AtomicLong();
		long[] data = new long[2_000_000];
		for (int i = 0; i < data.length; i++)
			data[i] = i * 7L;
		Thread t = new Thread(() -> {
			for (;;) {
				ticks.incrementAndGet();
				try { Thread.sleep(10); } catch (InterruptedException e) { return; }
			}
		});
		t.setDaemon(true);
		t.start();
		HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", Integer.parseInt(args[0])), 0);
		s.createContext("/", ex -> {
			long sum = 0;
			for (long v : data)
				sum += v;
			byte[] b = ("ticks " + ticks.get() + " sum " + sum + "\n").getBytes();
			ex.sendResponseHeaders(200, b.length);
			ex.getResponseBody().write(b);
			ex.close();
		});
		s.setExecutor(Executors.newFixedThreadPool(4));
		s.start();
		System.out.println("READY");
	}
}
