// gobench is Go's implementation of the side-by-side workloads in
// bench/workloads.tsv: one function per table row, registered by name in
// `workloads` below, doing the same work as bench/workloads/goro.cpp and
// bench/workloads/fiber.cpp.
//
//	gobench <workload> <procs> <n> <reps> [key=value ...]
//	gobench --list       the workloads implemented, one a line
//	gobench --version    one line: the Go version
//
// Each rep prints one line, "RESULT go <workload> <procs> <value>", the
// value in the row's unit. procs is GOMAXPROCS. Exit status 2: usage
// (unknown workload, missing parameter); a wrong result panics.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type args struct {
	workload string
	procs    int
	n        int
	params   map[string]int
}

func (a *args) param(key string) int {
	v, ok := a.params[key]
	if !ok {
		fmt.Fprintf(os.Stderr, "go: %s: missing parameter %s=...\n", a.workload, key)
		os.Exit(2)
	}
	return v
}

func check(ok bool, what string) {
	if !ok {
		panic(what)
	}
}

func msSince(t0 time.Time) float64 {
	return float64(time.Since(t0).Nanoseconds()) / 1e6
}

func nsPer(t0 time.Time, ops int) float64 {
	return float64(time.Since(t0).Nanoseconds()) / float64(ops)
}

func skynetNode(out chan<- int, num, size, div int) {
	if size == 1 {
		out <- num
		return
	}
	ch := make(chan int, div)
	for i := 0; i < div; i++ {
		sub := num + i*(size/div)
		go skynetNode(ch, sub, size/div, div)
	}
	sum := 0
	for i := 0; i < div; i++ {
		sum += <-ch
	}
	out <- sum
}

func skynet(a *args) float64 {
	n, div := a.n, a.param("div")
	t0 := time.Now()
	ch := make(chan int, 1)
	go skynetNode(ch, 0, n, div)
	sum := <-ch
	ms := msSince(t0)
	check(sum == n*(n-1)/2, "skynet: wrong sum")
	return ms
}

func pingpong(a *args) float64 {
	ping, pong := make(chan int), make(chan int)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		for v := range ping {
			pong <- v
		}
		wg.Done()
	}()
	t0 := time.Now()
	sum := 0
	for i := 0; i < a.n; i++ {
		ping <- i
		sum += <-pong
	}
	ns := nsPer(t0, a.n)
	close(ping)
	wg.Wait()
	check(sum == a.n*(a.n-1)/2, "pingpong: wrong sum")
	return ns
}

func spawn(a *args) float64 {
	t0 := time.Now()
	var wg sync.WaitGroup
	wg.Add(a.n)
	for i := 0; i < a.n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	return nsPer(t0, a.n)
}

// A static select, as a Go programmer writes for a fixed fan-in
// (reflect.Select would be much slower).
func selectN(a *args) float64 {
	k := a.param("cases")
	if k != 2 && k != 8 {
		fmt.Fprintln(os.Stderr, "go: select: cases must be 2 or 8")
		os.Exit(2)
	}
	chans := make([]chan int, 8) // unused ones stay nil: never ready
	for i := 0; i < k; i++ {
		chans[i] = make(chan int)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		for i := 0; i < a.n; i++ {
			chans[i%k] <- i
		}
		wg.Done()
	}()
	t0 := time.Now()
	sum := 0
	if k == 2 {
		c0, c1 := chans[0], chans[1]
		for i := 0; i < a.n; i++ {
			select {
			case v := <-c0:
				sum += v
			case v := <-c1:
				sum += v
			}
		}
	} else {
		c0, c1, c2, c3, c4, c5, c6, c7 := chans[0], chans[1], chans[2], chans[3], chans[4], chans[5], chans[6], chans[7]
		for i := 0; i < a.n; i++ {
			select {
			case v := <-c0:
				sum += v
			case v := <-c1:
				sum += v
			case v := <-c2:
				sum += v
			case v := <-c3:
				sum += v
			case v := <-c4:
				sum += v
			case v := <-c5:
				sum += v
			case v := <-c6:
				sum += v
			case v := <-c7:
				sum += v
			}
		}
	}
	ns := nsPer(t0, a.n)
	wg.Wait()
	check(sum == a.n*(a.n-1)/2, "select: wrong sum")
	return ns
}

func yield(a *args) float64 {
	g := a.param("goroutines")
	each := a.n / g
	t0 := time.Now()
	var wg sync.WaitGroup
	wg.Add(g)
	for k := 0; k < g; k++ {
		go func() {
			for i := 0; i < each; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return nsPer(t0, each*g)
}

func mpmc(a *args) float64 {
	producers, consumers := a.param("producers"), a.param("consumers")
	ch := make(chan int, a.param("cap"))
	var items, exited sync.WaitGroup
	sums := make([]int, consumers)
	t0 := time.Now()
	items.Add(a.n)
	exited.Add(producers + consumers)
	for p := 0; p < producers; p++ {
		go func(p int) {
			for i := p; i < a.n; i += producers {
				ch <- i
			}
			exited.Done()
		}(p)
	}
	for c := 0; c < consumers; c++ {
		go func(c int) {
			s := 0
			for v := range ch {
				s += v
				items.Done()
			}
			sums[c] = s
			exited.Done()
		}(c)
	}
	items.Wait()
	ns := nsPer(t0, a.n)
	close(ch)
	exited.Wait()
	total := 0
	for _, s := range sums {
		total += s
	}
	check(total == a.n*(a.n-1)/2, "mpmc: lost items")
	return ns
}

func hotchan(a *args) float64 {
	senders := a.param("goroutines") / 2
	receivers := senders
	ch := make(chan int)
	var sent, received sync.WaitGroup
	var total int64
	t0 := time.Now()
	received.Add(receivers)
	for r := 0; r < receivers; r++ {
		go func() {
			s := 0
			for v := range ch {
				s += v
			}
			atomic.AddInt64(&total, int64(s))
			received.Done()
		}()
	}
	sent.Add(senders)
	for s := 0; s < senders; s++ {
		go func(s int) {
			for i := s; i < a.n; i += senders {
				ch <- i
			}
			sent.Done()
		}(s)
	}
	sent.Wait()
	close(ch)
	received.Wait()
	ns := nsPer(t0, a.n)
	check(total == int64(a.n)*int64(a.n-1)/2, "hotchan: lost items")
	return ns
}

func mutex(a *args) float64 {
	g := a.param("goroutines")
	each := a.n / g
	var m sync.Mutex
	counter := 0
	t0 := time.Now()
	var wg sync.WaitGroup
	wg.Add(g)
	for k := 0; k < g; k++ {
		go func() {
			for i := 0; i < each; i++ {
				m.Lock()
				counter++
				m.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	ns := nsPer(t0, each*g)
	check(counter == each*g, "mutex: lost increments")
	return ns
}

func sleepers(a *args) float64 {
	d := time.Duration(a.param("sleep_ms")) * time.Millisecond
	t0 := time.Now()
	var wg sync.WaitGroup
	wg.Add(a.n)
	for i := 0; i < a.n; i++ {
		go func() {
			time.Sleep(d)
			wg.Done()
		}()
	}
	wg.Wait()
	return msSince(t0)
}

// n goroutines parked on gate's receive; measure() runs once all are
// parked, then they are released (close) and waited for.
func parkAll(n int, measure func()) {
	gate := make(chan struct{})
	var parked, exited sync.WaitGroup
	parked.Add(n)
	exited.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			parked.Done()
			<-gate
			exited.Done()
		}()
	}
	parked.Wait()
	measure()
	close(gate)
	exited.Wait()
}

func spawnPark(a *args) float64 {
	var ms float64
	t0 := time.Now()
	parkAll(a.n, func() { ms = msSince(t0) })
	return ms
}

// Resident memory plus page tables, in bytes.
func rssPteBytes() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		panic(err)
	}
	kib := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "VmRSS:" || f[0] == "VmPTE:") {
			v, _ := strconv.Atoi(f[1])
			kib += v
		}
	}
	return float64(kib) * 1024
}

func rssParked(a *args) float64 {
	runtime.GC()
	before, after := rssPteBytes(), 0.0
	parkAll(a.n, func() { after = rssPteBytes() })
	return (after - before) / float64(a.n)
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := func(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)*1e-6 }
	return s(ru.Utime) + s(ru.Stime)
}

func idleCPU(a *args) float64 {
	c0 := cpuSeconds()
	time.Sleep(time.Duration(a.n) * time.Millisecond)
	return cpuSeconds() - c0
}

type entry struct {
	name string
	run  func(*args) float64
}

var workloads = []entry{
	{"skynet", skynet}, {"pingpong", pingpong}, {"spawn", spawn},
	{"select2", selectN}, {"select8", selectN}, {"yield", yield},
	{"mpmc", mpmc}, {"hotchan", hotchan}, {"mutex", mutex},
	{"sleepers", sleepers}, {"spawn_park", spawnPark}, {"rss_parked", rssParked},
	{"idle_cpu", idleCPU},
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gobench <workload> <procs> <n> <reps> [key=value ...] | --list | --version")
	os.Exit(2)
}

func positive(s string) int {
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		usage()
	}
	return v
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--list" {
		for _, e := range workloads {
			fmt.Println(e.name)
		}
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println(runtime.Version())
		return
	}
	if len(os.Args) < 5 {
		usage()
	}
	a := &args{workload: os.Args[1], procs: positive(os.Args[2]), n: positive(os.Args[3]), params: map[string]int{}}
	reps := positive(os.Args[4])
	for _, kv := range os.Args[5:] {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			fmt.Fprintf(os.Stderr, "go: bad parameter (want key=integer): %s\n", kv)
			os.Exit(2)
		}
		a.params[k] = n
	}
	var run func(*args) float64
	for _, e := range workloads {
		if e.name == a.workload {
			run = e.run
		}
	}
	if run == nil {
		fmt.Fprintf(os.Stderr, "go: unknown workload %s\n", a.workload)
		os.Exit(2)
	}
	runtime.GOMAXPROCS(a.procs)
	for r := 0; r < reps; r++ {
		fmt.Printf("RESULT go %s %d %.6g\n", a.workload, a.procs, run(a))
	}
}
