// gorobench runs the Go side of goro's side-by-side benchmarks: the same
// workloads as bench/*_bench.cpp and bench/*_prog.cpp, on the Go runtime.
// Usage: gorobench [workload ...]   (default: all). Each line printed is
// "go <workload> <value> <unit>", the median of 5 runs.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"time"
)

type workload struct {
	name string
	unit string
	run  func() float64
}

func median(f func() float64) float64 {
	var xs []float64
	for i := 0; i < 5; i++ {
		xs = append(xs, f())
	}
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

func perOp(n int, f func()) float64 {
	t0 := time.Now()
	f()
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

func spawn() float64 {
	const n = 1000000
	return perOp(n, func() {
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() { wg.Done() }()
		}
		wg.Wait()
	})
}

func gosched() float64 {
	const n = 5000000
	return perOp(n, func() {
		for i := 0; i < n; i++ {
			runtime.Gosched()
		}
	})
}

// Two goroutines yielding to each other on one P: ns per yield.
func gosched2() float64 {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	const n = 2000000
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				close(done)
				return
			default:
				runtime.Gosched()
			}
		}
	}()
	r := perOp(2*n, func() {
		for i := 0; i < n; i++ {
			runtime.Gosched()
		}
	})
	close(stop)
	<-done
	return r
}

func pingpong() float64 {
	const n = 1000000
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	r := perOp(n, func() {
		for i := 0; i < n; i++ {
			ping <- i
			<-pong
		}
	})
	close(ping)
	return r
}

func pipe(producers, consumers int) float64 {
	const n = 1000000
	return perOp(n, func() {
		ch := make(chan int, 128)
		var pw, cw sync.WaitGroup
		for p := 0; p < producers; p++ {
			pw.Add(1)
			go func(p int) {
				defer pw.Done()
				for i := p; i < n; i += producers {
					ch <- i
				}
			}(p)
		}
		sums := make([]int, consumers)
		for c := 0; c < consumers; c++ {
			cw.Add(1)
			go func(c int) {
				defer cw.Done()
				for v := range ch {
					sums[c] += v
				}
			}(c)
		}
		pw.Wait()
		close(ch)
		cw.Wait()
		total := 0
		for _, s := range sums {
			total += s
		}
		if total != n*(n-1)/2 {
			panic("lost items")
		}
	})
}

func selectN(k int) float64 {
	const n = 1000000
	chans := make([]chan int, k)
	for i := range chans {
		chans[i] = make(chan int)
	}
	stop := make(chan struct{})
	for i, c := range chans {
		go func(i int, c chan int) {
			for {
				select {
				case c <- i:
				case <-stop:
					return
				}
			}
		}(i, c)
	}
	sum := 0
	var r float64
	if k == 2 {
		r = perOp(n, func() {
			for i := 0; i < n; i++ {
				select {
				case v := <-chans[0]:
					sum += v
				case v := <-chans[1]:
					sum += v
				}
			}
		})
	} else {
		// reflect.Select would be much slower; a static 8-case select is
		// what a Go programmer writes for a fixed fan-in.
		r = perOp(n, func() {
			for i := 0; i < n; i++ {
				select {
				case v := <-chans[0]:
					sum += v
				case v := <-chans[1]:
					sum += v
				case v := <-chans[2]:
					sum += v
				case v := <-chans[3]:
					sum += v
				case v := <-chans[4]:
					sum += v
				case v := <-chans[5]:
					sum += v
				case v := <-chans[6]:
					sum += v
				case v := <-chans[7]:
					sum += v
				}
			}
		})
	}
	close(stop)
	_ = sum
	return r
}

func timerCreateStop() float64 {
	const n = 2000000
	return perOp(n, func() {
		for i := 0; i < n; i++ {
			t := time.NewTimer(time.Hour)
			t.Stop()
		}
	})
}

func sleepers() float64 {
	t0 := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 100000; i++ {
		wg.Add(1)
		go func() {
			time.Sleep(10 * time.Millisecond)
			wg.Done()
		}()
	}
	wg.Wait()
	return float64(time.Since(t0).Microseconds()) / 1000
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

func skynet() float64 {
	t0 := time.Now()
	ch := make(chan int, 1)
	go skynetNode(ch, 0, 1000000, 10)
	if sum := <-ch; sum != 499999500000 {
		panic("skynet: wrong sum")
	}
	return float64(time.Since(t0).Microseconds()) / 1000
}

func rssKiB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	var v int
	for _, line := range splitLines(string(b)) {
		if n, _ := fmt.Sscanf(line, "VmRSS: %d kB", &v); n == 1 {
			return v
		}
	}
	return 0
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func rss() float64 {
	const n = 1000000
	runtime.GC()
	before := rssKiB()
	var parked, gate sync.WaitGroup
	gate.Add(1)
	parked.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			parked.Done()
			gate.Wait()
		}()
	}
	parked.Wait()
	runtime.GC()
	after := rssKiB()
	gate.Done()
	return float64(after-before) * 1024 / n
}

func mutexUncontended() float64 {
	const n = 20000000
	var m sync.Mutex
	return perOp(n, func() {
		for i := 0; i < n; i++ {
			m.Lock()
			m.Unlock()
		}
	})
}

func mutexContended() float64 {
	const n = 2000000
	g := 2 * runtime.GOMAXPROCS(0)
	return perOp(n, func() {
		var m sync.Mutex
		counter := 0
		var wg sync.WaitGroup
		for i := 0; i < g; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < n/g; k++ {
					m.Lock()
					counter++
					m.Unlock()
				}
			}()
		}
		wg.Wait()
	})
}

func contextTree() float64 {
	const trees = 50
	return perOp(trees, func() {
		for t := 0; t < trees; t++ {
			root, cancel := context.WithCancel(context.Background())
			level := []context.Context{root}
			var cancels []context.CancelFunc
			for d := 0; d < 4; d++ {
				var next []context.Context
				for _, c := range level {
					for i := 0; i < 10; i++ {
						child, cc := context.WithCancel(c)
						cancels = append(cancels, cc)
						next = append(next, child)
					}
				}
				level = next
			}
			cancel()
			for _, c := range level {
				<-c.Done()
			}
			_ = cancels
		}
	}) / 1000 // us
}

// group is errgroup.Group written inline (no downloads here).
type group struct {
	wg      sync.WaitGroup
	errOnce sync.Once
	err     error
	sem     chan struct{}
}

func (g *group) setLimit(n int) { g.sem = make(chan struct{}, n) }
func (g *group) goTask(f func() error) {
	if g.sem != nil {
		g.sem <- struct{}{}
	}
	g.wg.Add(1)
	go func() {
		defer func() {
			if g.sem != nil {
				<-g.sem
			}
			g.wg.Done()
		}()
		if err := f(); err != nil {
			g.errOnce.Do(func() { g.err = err })
		}
	}()
}
func (g *group) wait() error { g.wg.Wait(); return g.err }

func errgroupFanout(limit int) float64 {
	const rounds = 50
	return perOp(rounds, func() {
		for r := 0; r < rounds; r++ {
			var g group
			if limit > 0 {
				g.setLimit(limit)
			}
			for i := 0; i < 10000; i++ {
				g.goTask(func() error { return nil })
			}
			if err := g.wait(); err != nil {
				panic(err)
			}
		}
	}) / 1000 // us
}

func main() {
	all := []workload{
		{"spawn", "ns/goroutine", spawn},
		{"gosched", "ns/op", gosched},
		{"gosched2", "ns/yield", gosched2},
		{"pingpong", "ns/roundtrip", pingpong},
		{"spsc", "ns/item", func() float64 { return pipe(1, 1) }},
		{"mpmc", "ns/item", func() float64 { return pipe(4, 4) }},
		{"select2", "ns/op", func() float64 { return selectN(2) }},
		{"select8", "ns/op", func() float64 { return selectN(8) }},
		{"timer", "ns/op", timerCreateStop},
		{"sleepers", "ms", sleepers},
		{"skynet", "ms", skynet},
		{"rss", "bytes/goroutine", rss},
		{"mutex_uncontended", "ns/op", mutexUncontended},
		{"mutex_contended", "ns/op", mutexContended},
		{"context_tree", "us/tree", contextTree},
		{"errgroup", "us/fanout", func() float64 { return errgroupFanout(0) }},
		{"errgroup_limit8", "us/fanout", func() float64 { return errgroupFanout(8) }},
	}
	want := map[string]bool{}
	for _, a := range os.Args[1:] {
		want[a] = true
	}
	for _, w := range all {
		if len(want) > 0 && !want[w.name] {
			continue
		}
		f := w.run
		if w.name == "rss" {
			fmt.Printf("go %s %.0f %s\n", w.name, f(), w.unit) // once: it is heavy
			continue
		}
		fmt.Printf("go %s %.1f %s\n", w.name, median(f), w.unit)
	}
}
