// A Go program serving HTTP (the runtime's goroutines on its threads,
// its heap in arenas it reserved) from a 32 MB slice filled at start,
// while a goroutine counts every 10 ms.
//   ticker PORT      prints "READY" once it listens
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

func main() {
	var ticks int64
	data := make([]int64, 4_000_000)
	for i := range data {
		data[i] = int64(i) * 3
	}
	go func() {
		for {
			atomic.AddInt64(&ticks, 1)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var s int64
		for _, v := range data {
			s += v
		}
		fmt.Fprintf(w, "ticks %d sum %d\n", atomic.LoadInt64(&ticks), s)
	})
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Println("FAIL", err)
		os.Exit(1)
	}
	fmt.Println("READY")
	http.Serve(l, nil)
}
