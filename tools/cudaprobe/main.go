// Command cudaprobe asks the CUDA driver what one GPU offers the calling
// process: its name and the free and total memory of a context on it, and,
// with -alloc, whether an allocation of that many bytes succeeds. Under MPS
// with CUDA_MPS_PINNED_DEVICE_MEM_LIMIT the total is the limit, and an
// allocation beyond it fails: scripts/gpu-check.sh runs it in two sessions
// sharing one GPU.
//
// It needs no CUDA headers or toolkit: libcuda.so.1 (the driver's library)
// is loaded at run time and the few functions used are declared here. Build
// with cgo: CGO_ENABLED=1 go build -o bin/cudaprobe ./tools/cudaprobe.
//
// Output, one key=value line each: device=NAME, total_bytes=N,
// free_bytes=N, and with -alloc: alloc_bytes=N alloc=ok|failed (CUDA error
// E). Exit status 1 when the driver cannot be used.
package main

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef unsigned long long CUdeviceptr;

static void *cuda;

static const char *probe_load(void) {
	cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	return cuda ? NULL : dlerror();
}

static void *probe_sym(const char *name) { return dlsym(cuda, name); }

static CUresult probe_init(void *f) { return ((CUresult (*)(unsigned int))f)(0); }
static CUresult probe_device_get(void *f, CUdevice *d, int ordinal) { return ((CUresult (*)(CUdevice *, int))f)(d, ordinal); }
static CUresult probe_device_name(void *f, char *name, int len, CUdevice d) { return ((CUresult (*)(char *, int, CUdevice))f)(name, len, d); }
static CUresult probe_ctx_create(void *f, CUcontext *c, CUdevice d) { return ((CUresult (*)(CUcontext *, unsigned int, CUdevice))f)(c, 0, d); }
static CUresult probe_mem_info(void *f, size_t *free, size_t *total) { return ((CUresult (*)(size_t *, size_t *))f)(free, total); }
static CUresult probe_mem_alloc(void *f, CUdeviceptr *p, size_t n) { return ((CUresult (*)(CUdeviceptr *, size_t))f)(p, n); }
static CUresult probe_mem_free(void *f, CUdeviceptr p) { return ((CUresult (*)(CUdeviceptr))f)(p); }
*/
import "C"

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"unsafe"
)

func main() {
	device := flag.Int("device", 0, "CUDA device ordinal (as CUDA_VISIBLE_DEVICES numbers them)")
	alloc := flag.Int64("alloc", 0, "try to allocate this many bytes of device memory (0: do not)")
	flag.Parse()
	if err := probe(*device, *alloc); err != nil {
		fmt.Fprintln(os.Stderr, "cudaprobe:", err)
		os.Exit(1)
	}
}

func probe(ordinal int, alloc int64) error {
	if msg := C.probe_load(); msg != nil {
		return fmt.Errorf("load libcuda.so.1: %s", C.GoString(msg))
	}
	syms := map[string]unsafe.Pointer{}
	for _, name := range []string{"cuInit", "cuDeviceGet", "cuDeviceGetName", "cuCtxCreate_v2", "cuMemGetInfo_v2", "cuMemAlloc_v2", "cuMemFree_v2"} {
		cname := C.CString(name)
		p := C.probe_sym(cname)
		C.free(unsafe.Pointer(cname))
		if p == nil {
			return fmt.Errorf("libcuda.so.1 has no %s", name)
		}
		syms[name] = p
	}
	check := func(what string, r C.CUresult) error {
		if r != 0 {
			return fmt.Errorf("%s: CUDA error %d", what, int(r))
		}
		return nil
	}
	if err := check("cuInit", C.probe_init(syms["cuInit"])); err != nil {
		return err
	}
	var dev C.CUdevice
	if err := check("cuDeviceGet", C.probe_device_get(syms["cuDeviceGet"], &dev, C.int(ordinal))); err != nil {
		return err
	}
	name := make([]byte, 256)
	if err := check("cuDeviceGetName", C.probe_device_name(syms["cuDeviceGetName"], (*C.char)(unsafe.Pointer(&name[0])), C.int(len(name)), dev)); err != nil {
		return err
	}
	var ctx C.CUcontext
	if err := check("cuCtxCreate", C.probe_ctx_create(syms["cuCtxCreate_v2"], &ctx, dev)); err != nil {
		return err
	}
	var free, total C.size_t
	if err := check("cuMemGetInfo", C.probe_mem_info(syms["cuMemGetInfo_v2"], &free, &total)); err != nil {
		return err
	}
	fmt.Printf("device=%s\ntotal_bytes=%d\nfree_bytes=%d\n", C.GoString((*C.char)(unsafe.Pointer(&name[0]))), uint64(total), uint64(free))
	if alloc <= 0 {
		return nil
	}
	var p C.CUdeviceptr
	r := C.probe_mem_alloc(syms["cuMemAlloc_v2"], &p, C.size_t(alloc))
	if r != 0 {
		fmt.Printf("alloc_bytes=%d alloc=failed (CUDA error %d)\n", alloc, int(r))
		return nil
	}
	fmt.Printf("alloc_bytes=%d alloc=ok\n", alloc)
	return errors.Join(check("cuMemFree", C.probe_mem_free(syms["cuMemFree_v2"], p)))
}
