/*
 * The in-guest agent of reclaim's VM oracle (issue 17): runs cross-check scenarios on the
 * guest's kernel and prints one JSON line per step on stdout (the serial console).
 *
 *   agent insmod FILE [PARAMS]   finit_module (MODULE_INIT_COMPRESSED_FILE: the .ko.xz as is)
 *   agent run FILE               the scenarios of FILE (written by reclaim.crosscheck.vm)
 *
 * It does what python/reclaim/crosscheck/host.py does on the host, with the same two-process
 * design: for each scenario a *monitor* process forks the *process under test* (a server
 * that maps memory, accesses it in fresh threads, calls madvise/munmap/fork and creates the
 * userfaultfds) and talks to it over a SOCK_SEQPACKET socket. The server passes every
 * userfaultfd to the monitor (SCM_RIGHTS), which owns it as a non-cooperative manager: it
 * issues the ioctls, and a reader thread polls every userfaultfd and buffers the messages as
 * they arrive (the kernel blocks the process that causes a REMOVE/UNMAP/FORK event until
 * the event is read). A thread whose access faults in a registered range is parked in
 * handle_userfault; the monitor sees the PAGEFAULT and reports the access as blocked. A
 * SIGBUS/SIGSEGV kills the server; the monitor reports the signal.
 *
 * Each access reports the minor and major faults it took (getrusage(RUSAGE_THREAD) around
 * the one load or store), which is how the s390x young emulation is observed from user space.
 *
 * Outside a scenario, the input may also hold "sysctl KEY VALUE" (writes /proc/sys/KEY) and
 * "replay NAME FILE anon|shmem RUN": a trace replay (issue 18, see replay() below).
 *
 * Output lines start with "@@R " followed by a JSON object; everything else on the console
 * (kernel messages) is ignored by the host.
 *
 * Compiled with RECLAIM_AGENT_TAP defined (by a kselftest-style program that
 * reclaim.crosscheck.ctest writes and that #includes this file), it prints no JSON and has no
 * main(): each observation is also rendered as the canonical text of
 * reclaim.crosscheck.scenario.Observation.render (addresses as mapping name and page), which
 * reclaim_tap_scenario() compares with the model's, step by step.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif
#ifndef UFFDIO_CONTINUE
#define UFFDIO_CONTINUE_MODE_DONTWAKE ((__u64)1 << 0)
struct uffdio_continue {
	struct uffdio_range range;
	__u64 mode;
	__s64 mapped;
};
#define UFFDIO_CONTINUE _IOWR(UFFDIO, 0x07, struct uffdio_continue)
#endif
#ifndef UFFDIO_REGISTER_MODE_MINOR
#define UFFDIO_REGISTER_MODE_MINOR ((__u64)1 << 2)
#endif

#define PAGE 4096UL
#define MAXMAP 16
#define MAXUFFD 16
#define MAXTHR 16
#define MAXLOG 4096
#define STUCK_MS 8000   /* no PAGEFAULT and no completion: stuck (TCG is slow) */
#define ACCESS_MS 400   /* parked when wchan is unknown */
#define CALL_MS 20000   /* a call of the server */

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- output ------------------------------------------------------------------------- */

static char out[131072];
static size_t outlen;

/* append to buf (cap bytes, *len used), truncating at the end as snprintf does */
static void vcat(char *buf, size_t cap, size_t *len, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	if (n > 0)
		*len += (size_t)n < cap - *len ? (size_t)n : cap - *len - 1;
}

static void o(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vcat(out, sizeof(out), &outlen, fmt, ap);
	va_end(ap);
}

static void ostr(const char *s)
{
	o("\"");
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			o("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			o("\\u%04x", *s);
		else
			o("%c", *s);
	}
	o("\"");
}

static void line_begin(void)
{
	outlen = 0;
	o("@@R {");
}

#ifdef RECLAIM_AGENT_TAP
static void line_end(void)
{
	outlen = 0;
}
#else
static void line_end(void)
{
	o("}\n");
	size_t off = 0;
	while (off < outlen) {
		ssize_t w = write(1, out + off, outlen - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	outlen = 0;
}
#endif

/* ---- the canonical text of an observation (Observation.render) ------------------------ */

/* how a step's observation renders beyond its kind (the step classes Touch and SwapEntry) */
enum { RH_PLAIN = 0, RH_TOUCH = 1, RH_SWAP_ENTRY = 2 };
static int rhint;
static char rtext[4096];
static size_t rlen;

static void rcat(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vcat(rtext, sizeof(rtext), &rlen, fmt, ap);
	va_end(ap);
}

static void rset(const char *s)
{
	rlen = 0;
	rtext[0] = 0;
	if (s)
		rcat("%s", s);
}

#ifdef RECLAIM_AGENT_TAP
/* the errno names of Python's errno.errorcode (the program that includes this file has them) */
static const char *errno_text(int e, char *buf, size_t n)
{
	for (size_t i = 0; i < sizeof(reclaim_errnos) / sizeof(reclaim_errnos[0]); i++)
		if (reclaim_errnos[i].e == e)
			return reclaim_errnos[i].name;
	snprintf(buf, n, "errno %d", e);
	return buf;
}
#else
static const char *errno_text(int e, char *buf, size_t n)
{
	snprintf(buf, n, "errno %d", e);
	return buf;
}
#endif

/* ---- the wire between monitor and server --------------------------------------------- */

enum op { OP_MMAP = 1, OP_MUNMAP, OP_MADVISE, OP_UFFD, OP_ACCESS, OP_FORK, OP_EXIT };
enum msgtype { M_REPLY = 1, M_STARTED, M_DONE, M_CHILD_EXIT };

struct cmd {
	int op, tid, write, kind, shared, advice;
	uint64_t addr, len, value;
};

struct rep {
	int type, tid, err, status, pid;
	long native, minflt, majflt;
	uint64_t value, addr;
};

static int send_rep(int sock, const struct rep *r, int fd)
{
	struct iovec iov = { (void *)r, sizeof(*r) };
	struct msghdr mh = { 0 };
	char cbuf[CMSG_SPACE(sizeof(int))];
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd >= 0) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

static ssize_t recv_rep(int sock, struct rep *r, int *fd)
{
	struct iovec iov = { r, sizeof(*r) };
	struct msghdr mh = { 0 };
	char cbuf[CMSG_SPACE(sizeof(int))];
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	*fd = -1;
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (n > 0) {
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		if (c && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	}
	return n;
}

/* ---- the server (the process under test) --------------------------------------------- */

static int srv_sock;

struct access_arg {
	int tid, write;
	uint64_t addr, value;
};

static void *access_thread(void *p)
{
	struct access_arg a = *(struct access_arg *)p;
	free(p);
	struct rep r = { .type = M_STARTED, .tid = a.tid, .native = syscall(SYS_gettid) };
	send_rep(srv_sock, &r, -1);
	struct rusage r0, r1;
	getrusage(RUSAGE_THREAD, &r0);
	volatile uint64_t *ptr = (volatile uint64_t *)(uintptr_t)a.addr;
	uint64_t v = a.value;
	if (a.write)
		*ptr = v;
	else
		v = *ptr;
	getrusage(RUSAGE_THREAD, &r1);
	struct rep d = { .type = M_DONE, .tid = a.tid, .value = v };
	d.minflt = r1.ru_minflt - r0.ru_minflt;
	d.majflt = r1.ru_majflt - r0.ru_majflt;
	send_rep(srv_sock, &d, -1);
	return NULL;
}

static void *reap_thread(void *p)
{
	int pid = (int)(intptr_t)p, status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	struct rep r = { .type = M_CHILD_EXIT, .status = status, .pid = pid };
	send_rep(srv_sock, &r, -1);
	return NULL;
}

static void serve(int sock)
{
	srv_sock = sock;
	signal(SIGBUS, SIG_DFL);
	signal(SIGSEGV, SIG_DFL);
	for (;;) {
		struct cmd c;
		ssize_t n = recv(sock, &c, sizeof(c), 0);
		if (n <= 0)
			_exit(0);
		struct rep r = { .type = M_REPLY };
		int fd = -1;
		switch (c.op) {
		case OP_MMAP: {
			int flags = c.shared ? MAP_SHARED : MAP_PRIVATE, mfd = -1;
			if (c.kind) {
				mfd = memfd_create("crosscheck", MFD_CLOEXEC);
				if (mfd < 0 || ftruncate(mfd, (off_t)c.len) < 0) {
					r.err = errno;
					break;
				}
			} else {
				flags |= MAP_ANONYMOUS;
			}
			void *a = mmap(NULL, c.len, PROT_READ | PROT_WRITE, flags, mfd, 0);
			if (a == MAP_FAILED)
				r.err = errno;
			else
				r.addr = (uintptr_t)a;
			if (mfd >= 0)
				close(mfd);
			break;
		}
		case OP_MUNMAP:
			if (munmap((void *)(uintptr_t)c.addr, c.len) < 0)
				r.err = errno;
			break;
		case OP_MADVISE:
			if (madvise((void *)(uintptr_t)c.addr, c.len, c.advice) < 0)
				r.err = errno;
			break;
		case OP_UFFD:
			fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
			if (fd < 0) {
				int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
				if (dev >= 0) {
					fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
					close(dev);
				}
			}
			if (fd < 0)
				r.err = errno;
			break;
		case OP_ACCESS: {
			struct access_arg *a = malloc(sizeof(*a));
			a->tid = c.tid;
			a->write = c.write;
			a->addr = c.addr;
			a->value = c.value;
			pthread_t t;
			pthread_attr_t at;
			pthread_attr_init(&at);
			pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
			if (pthread_create(&t, &at, access_thread, a) != 0)
				r.err = EAGAIN;
			break;
		}
		case OP_FORK: {
			int sv[2];
			if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
				r.err = errno;
				break;
			}
			pid_t pid = fork();
			if (pid == 0) {
				/* the child serves its own socket (its one thread is this one) */
				close(sv[0]);
				close(sock);
				sock = srv_sock = sv[1];
				continue;
			}
			close(sv[1]);
			if (pid < 0) {
				r.err = errno;
				close(sv[0]);
				break;
			}
			pthread_t t;
			pthread_create(&t, NULL, reap_thread, (void *)(intptr_t)pid);
			pthread_detach(t);
			r.pid = pid;
			fd = sv[0];
			break;
		}
		case OP_EXIT:
			_exit(0);
		}
		send_rep(sock, &r, fd);
		if (fd >= 0)
			close(fd);
	}
}

/* ---- the monitor: userfaultfds and their reader thread ------------------------------- */

struct rawmsg {
	int uffd; /* index into uffds */
	int child;
	struct uffd_msg m;
};

struct uffd_ent {
	char name[64];
	int fd;    /* -1 once closed */
	int taken; /* messages of log[] already returned by read_events */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct uffd_ent uffds[MAXUFFD];
static int nuffd;
static struct rawmsg logm[MAXLOG];
static int nlog;
static volatile int reader_stop;
static volatile long reader_rounds;

static int uffd_add(const char *name, int fd)
{
	if (nuffd >= MAXUFFD)
		return -1;
	snprintf(uffds[nuffd].name, sizeof(uffds[0].name), "%s", name);
	uffds[nuffd].fd = fd;
	uffds[nuffd].taken = nlog;
	return nuffd++;
}

static int uffd_find(const char *name)
{
	for (int i = 0; i < nuffd; i++)
		if (uffds[i].fd >= 0 && strcmp(uffds[i].name, name) == 0)
			return i;
	return -1;
}

/* read every pending message now (lock held) */
static void drain_locked(void)
{
	for (int i = 0; i < nuffd; i++) {
		if (uffds[i].fd < 0)
			continue;
		for (;;) {
			struct uffd_msg m;
			ssize_t n = read(uffds[i].fd, &m, sizeof(m));
			if (n != sizeof(m))
				break;
			if (nlog >= MAXLOG)
				break;
			struct rawmsg *r = &logm[nlog++];
			r->uffd = i;
			r->m = m;
			r->child = -1;
			if (m.event == UFFD_EVENT_FORK) {
				char cn[sizeof(uffds[0].name)];
				snprintf(cn, sizeof(cn), "%.55s/fork", uffds[i].name);
				r->child = uffd_add(cn, (int)m.arg.fork.ufd);
			}
		}
	}
}

static void drain(void)
{
	pthread_mutex_lock(&lock);
	drain_locked();
	pthread_mutex_unlock(&lock);
}

static void *reader(void *unused)
{
	(void)unused;
	while (!reader_stop) {
		struct pollfd p[MAXUFFD];
		int n = 0;
		pthread_mutex_lock(&lock);
		for (int i = 0; i < nuffd; i++)
			if (uffds[i].fd >= 0) {
				p[n].fd = uffds[i].fd;
				p[n].events = POLLIN;
				n++;
			}
		pthread_mutex_unlock(&lock);
		if (n == 0)
			usleep(5000);
		else
			poll(p, (nfds_t)n, 20);
		drain();
		__atomic_add_fetch(&reader_rounds, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

/* ---- the monitor: processes --------------------------------------------------------- */

struct thr {
	int used, pending, write;
	uint64_t addr, value;
	long native, minflt, majflt;
	int done;
};

struct proc {
	int used, sock, pid, eof, dead, direct; /* direct: a child of the monitor */
	int child_status, have_child_status;
	struct thr th[MAXTHR];
	struct rep reply;
	int reply_fd, have_reply;
	char dead_detail[32];
};

static struct proc procs[2]; /* 0 parent, 1 child */

struct mapping {
	char name[32];
	uint64_t start;
	long pages;
};
static struct mapping maps[MAXMAP];
static int nmaps;

static struct mapping *map_find(const char *name)
{
	for (int i = nmaps - 1; i >= 0; i--)
		if (strcmp(maps[i].name, name) == 0)
			return &maps[i];
	return NULL;
}

/* the mapping holding addr, its page index and offset (scenario.locate); NULL outside all */
static struct mapping *locate(uint64_t addr, uint64_t *page, uint64_t *off)
{
	for (int i = nmaps - 1; i >= 0; i--)
		if (maps[i].start <= addr && addr < maps[i].start + (uint64_t)maps[i].pages * PAGE) {
			*page = (addr - maps[i].start) / PAGE;
			*off = (addr - maps[i].start) % PAGE;
			return &maps[i];
		}
	*page = addr / PAGE;
	*off = addr % PAGE;
	return NULL;
}

/* m[2] or m[2]+0x18 (PageRef.render) */
static void rcat_ref(uint64_t addr, int with_off)
{
	uint64_t page, off;
	struct mapping *m = locate(addr, &page, &off);
	rcat("%s[%llu]", m ? m->name : "?", (unsigned long long)page);
	if (with_off && off)
		rcat("+0x%llx", (unsigned long long)off);
}

/* m[0:2] (scenario.locate_range) */
static void rcat_range(uint64_t start, uint64_t end)
{
	uint64_t page, off;
	struct mapping *m = locate(start, &page, &off);
	if (!m) {
		rcat("?[0x%llx:0x%llx]", (unsigned long long)start, (unsigned long long)end);
		return;
	}
	uint64_t last = (end - m->start + PAGE - 1) / PAGE;
	rcat("%s[%llu:%llu]", m->name, (unsigned long long)page, (unsigned long long)last);
	if (off)
		rcat("+0x%llx", (unsigned long long)off);
}

/* receive one message from p within timeout_ms; 1 if one came */
static int pump(struct proc *p, int timeout_ms)
{
	if (p->eof)
		return 0;
	struct pollfd pf = { p->sock, POLLIN, 0 };
	if (poll(&pf, 1, timeout_ms < 0 ? 0 : timeout_ms) <= 0)
		return 0;
	struct rep r;
	int fd;
	ssize_t n = recv_rep(p->sock, &r, &fd);
	if (n <= 0) {
		p->eof = 1;
		return 1;
	}
	if (r.type == M_STARTED && r.tid >= 0 && r.tid < MAXTHR) {
		p->th[r.tid].native = r.native;
	} else if (r.type == M_DONE && r.tid >= 0 && r.tid < MAXTHR) {
		p->th[r.tid].done = 1;
		p->th[r.tid].value = r.value;
		p->th[r.tid].minflt = r.minflt;
		p->th[r.tid].majflt = r.majflt;
	} else if (r.type == M_CHILD_EXIT) {
		procs[1].child_status = r.status;
		procs[1].have_child_status = 1;
	} else if (r.type == M_REPLY) {
		p->reply = r;
		p->reply_fd = fd;
		p->have_reply = 1;
	}
	return 1;
}

/* send a command, wait for its reply; 0 on reply, -1 if none (died or stuck) */
static int call(struct proc *p, struct cmd *c, struct rep *out_r, int *out_fd)
{
	p->have_reply = 0;
	if (send(p->sock, c, sizeof(*c), MSG_NOSIGNAL) < 0) {
		p->eof = 1;
		return -1;
	}
	long deadline = now_ms() + CALL_MS;
	while (!p->have_reply) {
		if (p->eof || now_ms() > deadline)
			return -1;
		pump(p, 50);
	}
	*out_r = p->reply;
	if (out_fd)
		*out_fd = p->reply_fd;
	else if (p->reply_fd >= 0)
		close(p->reply_fd);
	return 0;
}

static const char *signame(int s)
{
	switch (s) {
	case SIGBUS: return "SIGBUS";
	case SIGSEGV: return "SIGSEGV";
	case SIGKILL: return "SIGKILL";
	case SIGABRT: return "SIGABRT";
	case SIGILL: return "SIGILL";
	case SIGTERM: return "SIGTERM";
	}
	return "SIG?";
}

/* ---- step observations ---------------------------------------------------------------- */

static int cur_step;
static const char *cur_scenario = "";

static void obs_begin(const char *kind)
{
	line_begin();
	o("\"scenario\":");
	ostr(cur_scenario);
	o(",\"i\":%d,\"kind\":\"%s\"", cur_step, kind);
}

static void obs_simple(const char *kind, const char *detail)
{
	if (!strcmp(kind, "signal") || !strcmp(kind, "state"))
		rset(detail);
	else if (detail && *detail && (!strcmp(kind, "error") || !strcmp(kind, "stuck"))) {
		rset(kind);
		rcat(": %s", detail);
	} else
		rset(kind);
	obs_begin(kind);
	if (detail) {
		o(",\"detail\":");
		ostr(detail);
	}
	line_end();
}

static void obs_errno(int e)
{
	char buf[32];
	rset(errno_text(e, buf, sizeof(buf)));
	obs_begin("errno");
	o(",\"errno\":%d", e);
	line_end();
}

static void emit_msg(const struct rawmsg *r)
{
	const struct uffd_msg *m = &r->m;
	o("{\"uffd\":");
	ostr(uffds[r->uffd].name);
	o(",\"event\":%u", m->event);
	if (m->event == UFFD_EVENT_PAGEFAULT)
		o(",\"flags\":%llu,\"address\":%llu,\"ptid\":%u",
		  (unsigned long long)m->arg.pagefault.flags,
		  (unsigned long long)m->arg.pagefault.address, m->arg.pagefault.feat.ptid);
	else if (m->event == UFFD_EVENT_REMOVE || m->event == UFFD_EVENT_UNMAP)
		o(",\"address\":%llu,\"end\":%llu", (unsigned long long)m->arg.remove.start,
		  (unsigned long long)m->arg.remove.end);
	if (r->child >= 0) {
		o(",\"child\":");
		ostr(uffds[r->child].name);
	}
	o("}");
}

/* one message as Msg.render of reclaim.crosscheck.scenario */
static void rcat_msg(const struct rawmsg *r)
{
	const struct uffd_msg *m = &r->m;
	const char *un = uffds[r->uffd].name;
	switch (m->event) {
	case UFFD_EVENT_PAGEFAULT: {
		uint64_t f = m->arg.pagefault.flags;
		rcat("PAGEFAULT %s ", un);
		rcat_ref(m->arg.pagefault.address, 1);
		if (f & UFFD_PAGEFAULT_FLAG_WRITE)
			rcat(" write");
		if (f & UFFD_PAGEFAULT_FLAG_WP)
			rcat(" wp");
		if (f & (1 << 2)) /* UFFD_PAGEFAULT_FLAG_MINOR */
			rcat(" minor");
		if (!(f & (UFFD_PAGEFAULT_FLAG_WRITE | UFFD_PAGEFAULT_FLAG_WP | (1 << 2))))
			rcat(" read");
		if (m->arg.pagefault.feat.ptid)
			rcat(" ptid");
		return;
	}
	case UFFD_EVENT_FORK:
		rcat("FORK %s -> %s", un, r->child >= 0 ? uffds[r->child].name : "");
		return;
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		rcat("%s %s ", m->event == UFFD_EVENT_REMOVE ? "REMOVE" : "UNMAP", un);
		rcat_range(m->arg.remove.start, m->arg.remove.end);
		return;
	case UFFD_EVENT_REMAP:
		rcat("REMAP %s ", un);
		rcat_range(0, 0); /* as the VM runner normalizes it: no range */
		return;
	}
	rcat("UNKNOWN(0x%x) %s", m->event, un);
}

static void died_or_stuck(int pi)
{
	struct proc *p = &procs[pi];
	if (!p->eof) {
		obs_simple("stuck", "no reply from the agent");
		return;
	}
	int status = 0, have = 0;
	if (p->direct) {
		for (int i = 0; i < 40 && !have; i++) {
			if (waitpid(p->pid, &status, WNOHANG) == p->pid)
				have = 1;
			else
				usleep(50000);
		}
	} else {
		long dl = now_ms() + 2000;
		while (!p->have_child_status && now_ms() < dl)
			pump(&procs[0], 50);
		have = p->have_child_status;
		status = p->child_status;
	}
	p->dead = 1;
	if (have && WIFSIGNALED(status)) {
		snprintf(p->dead_detail, sizeof(p->dead_detail), "%s", signame(WTERMSIG(status)));
		obs_simple("signal", p->dead_detail);
	} else {
		obs_simple("dead", NULL);
	}
}

static int fault_since(int seq, uint64_t page)
{
	for (int i = seq; i < nlog; i++)
		if (logm[i].m.event == UFFD_EVENT_PAGEFAULT &&
		    (logm[i].m.arg.pagefault.address & ~(PAGE - 1)) == page)
			return i;
	return -1;
}

/* the outcome of thread tid's pending access if it finishes within timeout_ms */
static int settle(int pi, int tid, int timeout_ms)
{
	struct proc *p = &procs[pi];
	struct thr *t = &p->th[tid];
	if (!t->pending)
		return 1;
	long dl = now_ms() + timeout_ms;
	for (;;) {
		if (t->done) {
			t->pending = 0;
			return 1;
		}
		long left = dl - now_ms();
		if (left <= 0 || p->eof)
			return 0;
		pump(p, (int)left);
	}
}

static void obs_done(int pi, int tid)
{
	struct thr *t = &procs[pi].th[tid];
	if (t->write)
		rset("written");
	else {
		rset(NULL);
		rcat("value 0x%llx", (unsigned long long)t->value);
	}
	if (rhint == RH_TOUCH)
		rcat(" minflt %ld majflt %ld", t->minflt, t->majflt);
	obs_begin(t->write ? "written" : "value");
	o(",\"value\":%llu,\"minflt\":%ld,\"majflt\":%ld", (unsigned long long)t->value, t->minflt,
	  t->majflt);
	line_end();
}

static const char *wchan(int pi, int tid, char *buf, size_t n)
{
	struct proc *p = &procs[pi];
	if (!p->th[tid].native)
		return NULL;
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/task/%ld/wchan", p->pid, p->th[tid].native);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	ssize_t r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return NULL;
	buf[r] = 0;
	return buf;
}

static void do_wait(int pi, int tid)
{
	struct proc *p = &procs[pi];
	struct thr *t = &p->th[tid];
	if (!t->used) {
		obs_simple("error", "thread made no access");
		return;
	}
	long start = now_ms();
	for (;;) {
		if (settle(pi, tid, 5)) {
			obs_done(pi, tid);
			return;
		}
		if (p->eof) {
			died_or_stuck(pi);
			return;
		}
		char buf[128];
		const char *w = wchan(pi, tid, buf, sizeof(buf));
		long el = now_ms() - start;
		if ((w && strncmp(w, "handle_userfault", 16) == 0) || (!w && el > ACCESS_MS)) {
			if (settle(pi, tid, 10)) {
				obs_done(pi, tid);
				return;
			}
			rset("blocked ");
			rcat_ref(t->addr, 0);
			obs_begin("blocked");
			o(",\"address\":%llu", (unsigned long long)t->addr);
			line_end();
			return;
		}
		if (el > STUCK_MS) {
			obs_simple("stuck", w ? w : "thread sleeps");
			return;
		}
	}
}

static void do_access(int pi, int tid, uint64_t addr, int write, uint64_t value)
{
	struct proc *p = &procs[pi];
	struct thr *t = &p->th[tid];
	if (t->used && t->pending) {
		/* the thread is still parked from an earlier access */
		if (!settle(pi, tid, 50)) {
			obs_simple("thread-blocked", NULL);
			return;
		}
	}
	pthread_mutex_lock(&lock);
	int seq = nlog;
	pthread_mutex_unlock(&lock);
	memset(t, 0, sizeof(*t));
	t->used = 1;
	t->pending = 1;
	t->write = write;
	t->addr = addr;
	struct cmd c = { .op = OP_ACCESS, .tid = tid, .write = write, .addr = addr, .value = value };
	struct rep r;
	if (call(p, &c, &r, NULL) < 0) {
		died_or_stuck(pi);
		return;
	}
	uint64_t page = addr & ~(PAGE - 1);
	long start = now_ms();
	for (;;) {
		if (settle(pi, tid, 5)) {
			obs_done(pi, tid);
			return;
		}
		if (p->eof) {
			died_or_stuck(pi);
			return;
		}
		pthread_mutex_lock(&lock);
		drain_locked();
		int mi = fault_since(seq, page);
		pthread_mutex_unlock(&lock);
		if (mi >= 0) {
			if (settle(pi, tid, 10)) {
				obs_done(pi, tid);
				return;
			}
			rset("blocked: ");
			rcat_msg(&logm[mi]);
			obs_begin("blocked");
			o(",\"msgs\":[");
			emit_msg(&logm[mi]);
			o("]");
			line_end();
			return;
		}
		if (now_ms() - start > STUCK_MS) {
			obs_simple("stuck", "no PAGEFAULT read and no completion");
			return;
		}
	}
}

static uint64_t pagemap_entry(int pid, uint64_t addr)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	int fd = open(path, O_RDONLY);
	uint64_t e = 0;
	if (fd >= 0) {
		if (pread(fd, &e, 8, (off_t)((addr / PAGE) * 8)) != 8)
			e = 0;
		close(fd);
	}
	return e;
}

static long smaps_swap_kib(int pid, uint64_t start, uint64_t len)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int inside = 0;
	long total = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;
		long kb;
		if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2 && strchr(line, ':') != line + 0 &&
		    line[0] != ' ' && strstr(line, "-") < strchr(line, ' '))
			inside = lo < start + len && start < hi;
		else if (inside && sscanf(line, "Swap: %ld kB", &kb) == 1)
			total += kb;
	}
	fclose(f);
	return total;
}

/* /proc/vmstat, or the rollup of a process, as a JSON object into the current line */
static void emit_kv_file(const char *path, const char *sep)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[256];
	int first = 1;
	o("{");
	while (fgets(line, sizeof(line), f)) {
		char key[128];
		long long v;
		char fmt[32];
		snprintf(fmt, sizeof(fmt), "%%127[^%s ]%s %%lld", sep, sep);
		if (sscanf(line, fmt, key, &v) == 2) {
			o("%s\"%s\":%lld", first ? "" : ",", key, v);
			first = 0;
		}
	}
	o("}");
	fclose(f);
}

/* ---- the scenario interpreter --------------------------------------------------------- */

static int srcbuf_pages = 64;
static char *srcbuf;

static int proc_index(const char *s) { return strcmp(s, "child") == 0 ? 1 : 0; }

static int uffd_fd_of(const char *name)
{
	pthread_mutex_lock(&lock);
	int i = uffd_find(name);
	int fd = i >= 0 ? uffds[i].fd : -1;
	pthread_mutex_unlock(&lock);
	return fd;
}

static int span(const char *name, long first, long npages, uint64_t *start, uint64_t *len)
{
	struct mapping *m = map_find(name);
	if (!m)
		return -1;
	long n = npages < 0 ? m->pages - first : npages;
	*start = m->start + (uint64_t)first * PAGE;
	*len = (uint64_t)n * PAGE;
	return 0;
}

static int advice_of(const char *a)
{
	if (!strcmp(a, "willneed")) return MADV_WILLNEED;
	if (!strcmp(a, "dontneed")) return MADV_DONTNEED;
	if (!strcmp(a, "free")) return MADV_FREE;
	if (!strcmp(a, "remove")) return MADV_REMOVE;
	if (!strcmp(a, "cold")) return MADV_COLD;
	if (!strcmp(a, "pageout")) return MADV_PAGEOUT;
	return -1;
}

static int xioctl(const char *uname, unsigned long req, void *arg)
{
	int fd = uffd_fd_of(uname);
	if (fd < 0)
		return -2;
	return ioctl(fd, req, arg) < 0 ? errno : 0;
}

static void obs_ioctl(int rc)
{
	if (rc == -2)
		obs_simple("error", "unknown userfaultfd");
	else if (rc)
		obs_errno(rc);
	else
		obs_simple("ok", NULL);
}

static void step(char **w, int nw)
{
	const char *op = w[0];
#define NEED(n)                                          \
	if (nw < (n)) {                                  \
		obs_simple("error", "malformed step"); \
		return;                                  \
	}
	if (!strcmp(op, "vmstat")) {
		obs_begin("vmstat");
		o(",\"vmstat\":");
		emit_kv_file("/proc/vmstat", " ");
		line_end();
		return;
	}
	if (!strcmp(op, "rollup")) {
		NEED(2);
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", procs[proc_index(w[1])].pid);
		obs_begin("rollup");
		o(",\"rollup\":");
		emit_kv_file(path, ":");
		line_end();
		return;
	}
	/* steps on a process: proc is w[1] */
	int uffd_step = !strcmp(op, "register") || !strcmp(op, "unregister") ||
			!strcmp(op, "copy") || !strcmp(op, "zeropage") || !strcmp(op, "wake") ||
			!strcmp(op, "continue") || !strcmp(op, "writeprotect") ||
			!strcmp(op, "read_events") || !strcmp(op, "close");
	if (!uffd_step) {
		NEED(2);
		int pi = proc_index(w[1]);
		struct proc *p = &procs[pi];
		if (!p->used) {
			obs_simple("error", "no such process");
			return;
		}
		if (p->dead) {
			obs_simple("dead", NULL);
			return;
		}
		struct cmd c = { 0 };
		struct rep r;
		uint64_t start, len;
		if (!strcmp(op, "mmap")) {
			NEED(6);
			if (nmaps >= MAXMAP || map_find(w[2])) {
				obs_simple("error", "mapping exists");
				return;
			}
			c.op = OP_MMAP;
			c.len = (uint64_t)atol(w[3]) * PAGE;
			c.kind = !strcmp(w[4], "shmem");
			c.shared = atoi(w[5]);
			if (call(p, &c, &r, NULL) < 0)
				return died_or_stuck(pi);
			if (r.err)
				return obs_errno(r.err);
			snprintf(maps[nmaps].name, sizeof(maps[0].name), "%s", w[2]);
			maps[nmaps].start = r.addr;
			maps[nmaps].pages = atol(w[3]);
			nmaps++;
			rset("ok");
			obs_begin("ok");
			o(",\"addr\":%llu", (unsigned long long)r.addr);
			line_end();
			return;
		}
		if (!strcmp(op, "munmap") || !strcmp(op, "madvise")) {
			NEED(5);
			if (span(w[2], atol(w[3]), atol(w[4]), &start, &len) < 0)
				return obs_simple("error", "unknown mapping");
			c.op = !strcmp(op, "munmap") ? OP_MUNMAP : OP_MADVISE;
			c.addr = start;
			c.len = len;
			if (c.op == OP_MADVISE) {
				NEED(6);
				c.advice = advice_of(w[5]);
			}
			if (call(p, &c, &r, NULL) < 0)
				return died_or_stuck(pi);
			return r.err ? obs_errno(r.err) : obs_simple("ok", NULL);
		}
		if (!strcmp(op, "fork")) {
			c.op = OP_FORK;
			int fd = -1;
			if (call(p, &c, &r, &fd) < 0)
				return died_or_stuck(pi);
			if (r.err)
				return obs_errno(r.err);
			memset(&procs[1], 0, sizeof(procs[1]));
			procs[1].used = 1;
			procs[1].sock = fd;
			procs[1].pid = r.pid;
			procs[1].reply_fd = -1;
			return obs_simple("ok", NULL);
		}
		if (!strcmp(op, "uffd")) {
			NEED(4);
			if (uffd_fd_of(w[2]) >= 0)
				return obs_simple("error", "userfaultfd exists");
			c.op = OP_UFFD;
			int fd = -1;
			if (call(p, &c, &r, &fd) < 0)
				return died_or_stuck(pi);
			if (r.err || fd < 0)
				return obs_errno(r.err ? r.err : EBADF);
			struct uffdio_api api = { .api = UFFD_API, .features = strtoull(w[3], NULL, 16) };
			if (ioctl(fd, UFFDIO_API, &api) < 0) {
				int e = errno;
				close(fd);
				return obs_errno(e);
			}
			pthread_mutex_lock(&lock);
			uffd_add(w[2], fd);
			pthread_mutex_unlock(&lock);
			return obs_simple("ok", NULL);
		}
		if (!strcmp(op, "read") || !strcmp(op, "write")) {
			NEED(6);
			struct mapping *m = map_find(w[2]);
			if (!m)
				return obs_simple("error", "unknown mapping");
			int tid = atoi(w[4]);
			if (tid < 0 || tid >= MAXTHR)
				return obs_simple("error", "thread id out of range");
			uint64_t addr = m->start + (uint64_t)atol(w[3]) * PAGE;
			if (!strcmp(op, "read"))
				return do_access(pi, tid, addr + strtoull(w[5], NULL, 16), 0, 0);
			return do_access(pi, tid, addr, 1, strtoull(w[5], NULL, 16));
		}
		if (!strcmp(op, "wait")) {
			NEED(3);
			int tid = atoi(w[2]);
			if (tid < 0 || tid >= MAXTHR)
				return obs_simple("error", "thread id out of range");
			return do_wait(pi, tid);
		}
		if (!strcmp(op, "page_state")) {
			NEED(4);
			if (span(w[2], atol(w[3]), 1, &start, &len) < 0)
				return obs_simple("error", "unknown mapping");
			uint64_t e = pagemap_entry(p->pid, start);
			const char *st = (e >> 63) & 1 ? "present" : (e >> 62) & 1 ? "swapped" : "none";
			rset(st);
			if (rhint == RH_SWAP_ENTRY && (e >> 62 & 1) && !(e >> 63 & 1)) {
				uint64_t entry = e & ((1ULL << 55) - 1);
				rset(NULL);
				rcat("swap type %llu offset %llu", (unsigned long long)(entry & 0x1f),
				     (unsigned long long)(entry >> 5));
			}
			obs_begin("state");
			o(",\"detail\":\"%s\",\"pagemap\":%llu", st, (unsigned long long)e);
			line_end();
			return;
		}
		if (!strcmp(op, "swap_usage")) {
			NEED(3);
			if (span(w[2], 0, -1, &start, &len) < 0)
				return obs_simple("error", "unknown mapping");
			long kib = smaps_swap_kib(p->pid, start, len);
			char d[32];
			snprintf(d, sizeof(d), "swap %ld", kib * 1024 / (long)PAGE);
			return obs_simple("state", d);
		}
		return obs_simple("error", "unknown step");
	}
	/* userfaultfd steps: the uffd name is w[1] */
	NEED(2);
	uint64_t start, len;
	if (!strcmp(op, "read_events")) {
		pthread_mutex_lock(&lock);
		int i = uffd_find(w[1]);
		if (i < 0) {
			pthread_mutex_unlock(&lock);
			return obs_simple("error", "unknown userfaultfd");
		}
		drain_locked();
		rset("[");
		obs_begin("events");
		o(",\"msgs\":[");
		int first = 1;
		for (int k = uffds[i].taken; k < nlog; k++)
			if (logm[k].uffd == i) {
				if (!first) {
					o(",");
					rcat(", ");
				}
				emit_msg(&logm[k]);
				rcat_msg(&logm[k]);
				first = 0;
			}
		rcat("]");
		uffds[i].taken = nlog;
		pthread_mutex_unlock(&lock);
		o("]");
		line_end();
		return;
	}
	if (!strcmp(op, "close")) {
		pthread_mutex_lock(&lock);
		int i = uffd_find(w[1]);
		int fd = i >= 0 ? uffds[i].fd : -1;
		if (i >= 0)
			uffds[i].fd = -1;
		long seen = reader_rounds;
		pthread_mutex_unlock(&lock);
		if (fd < 0)
			return obs_simple("error", "unknown userfaultfd");
		/* a poll(2) holds a reference to the file: let the current round end first */
		for (int k = 0; k < 100 && reader_rounds <= seen + 1; k++)
			usleep(5000);
		close(fd);
		return obs_simple("ok", NULL);
	}
	NEED(5);
	long first = atol(w[3]), n = atol(w[4]);
	if (span(w[2], first, n, &start, &len) < 0)
		return obs_simple("error", "unknown mapping");
	if (!strcmp(op, "register")) {
		NEED(7);
		struct uffdio_register reg = { .range = { start + strtoull(w[6], NULL, 16), len },
					       .mode = strtoull(w[5], NULL, 16) };
		return obs_ioctl(xioctl(w[1], UFFDIO_REGISTER, &reg));
	}
	if (!strcmp(op, "unregister")) {
		struct uffdio_range rng = { start, len };
		return obs_ioctl(xioctl(w[1], UFFDIO_UNREGISTER, &rng));
	}
	if (!strcmp(op, "wake")) {
		struct uffdio_range rng = { start, len };
		return obs_ioctl(xioctl(w[1], UFFDIO_WAKE, &rng));
	}
	if (!strcmp(op, "copy")) {
		NEED(7);
		if (n > srcbuf_pages)
			return obs_simple("error", "copy larger than the source buffer");
		memset(srcbuf, 0, (size_t)n * PAGE);
		uint64_t v = strtoull(w[5], NULL, 16);
		for (long k = 0; k < n; k++)
			memcpy(srcbuf + k * PAGE, &v, 8);
		struct uffdio_copy cp = { .dst = start, .src = (uintptr_t)srcbuf, .len = len,
					  .mode = atoi(w[6]) ? UFFDIO_COPY_MODE_DONTWAKE : 0 };
		return obs_ioctl(xioctl(w[1], UFFDIO_COPY, &cp));
	}
	if (!strcmp(op, "zeropage")) {
		NEED(6);
		struct uffdio_zeropage z = { .range = { start, len },
					     .mode = atoi(w[5]) ? UFFDIO_ZEROPAGE_MODE_DONTWAKE : 0 };
		return obs_ioctl(xioctl(w[1], UFFDIO_ZEROPAGE, &z));
	}
	if (!strcmp(op, "continue")) {
		NEED(6);
		struct uffdio_continue cn = { .range = { start, len },
					      .mode = atoi(w[5]) ? UFFDIO_CONTINUE_MODE_DONTWAKE : 0 };
		return obs_ioctl(xioctl(w[1], UFFDIO_CONTINUE, &cn));
	}
	if (!strcmp(op, "writeprotect")) {
		NEED(7);
		uint64_t mode = (atoi(w[5]) ? UFFDIO_WRITEPROTECT_MODE_WP : 0) |
				(atoi(w[6]) ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0);
		struct uffdio_writeprotect wp = { .range = { start, len }, .mode = mode };
		return obs_ioctl(xioctl(w[1], UFFDIO_WRITEPROTECT, &wp));
	}
	obs_simple("error", "unknown step");
#undef NEED
}

static int split(char *s, char **w, int max)
{
	int n = 0;
	for (char *t = strtok(s, " \t\n"); t && n < max; t = strtok(NULL, " \t\n"))
		w[n++] = t;
	return n;
}

/* called around each step of monitor() (the TAP driver compares the observation) */
static void (*before_step)(int i);
static void (*after_step)(int i);

/* run one scenario (lines[0..n)) in this process: the monitor */
static void monitor(const char *name, char **lines, int n)
{
	cur_scenario = name;
	srcbuf = mmap(NULL, (size_t)srcbuf_pages * PAGE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int sv[2];
	socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		/* one CPU for every thread: the per-CPU LRU batches drain where madvise runs */
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(0, &set);
		sched_setaffinity(0, sizeof(set), &set);
		serve(sv[1]);
		_exit(0);
	}
	close(sv[1]);
	procs[0].used = 1;
	procs[0].sock = sv[0];
	procs[0].pid = pid;
	procs[0].direct = 1;
	procs[0].reply_fd = -1;
	pthread_t rt;
	pthread_create(&rt, NULL, reader, NULL);
	for (int i = 0; i < n; i++) {
		char *w[16];
		char buf[512];
		snprintf(buf, sizeof(buf), "%s", lines[i]);
		int nw = split(buf, w, 16);
		cur_step = i;
		rset("error: no observation");
		if (before_step)
			before_step(i);
		if (nw > 0)
			step(w, nw);
		if (after_step)
			after_step(i);
	}
	if (procs[1].used && procs[1].pid > 0)
		kill(procs[1].pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	reader_stop = 1;
	pthread_join(rt, NULL);
}

/* ---- the run: setup, then one monitor process per scenario ---------------------------- */

static const char *swapdev = "/dev/vda";

#ifndef RECLAIM_AGENT_TAP
static void header(void)
{
	line_begin();
	o("\"header\":1");
	char buf[256];
	int fd = open("/proc/sys/kernel/osrelease", O_RDONLY);
	ssize_t r = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[r > 0 ? r : 0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	o(",\"release\":");
	ostr(buf);
	int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u >= 0) {
		struct uffdio_api api = { .api = UFFD_API };
		if (ioctl(u, UFFDIO_API, &api) == 0)
			o(",\"uffd_features\":%llu", (unsigned long long)api.features);
		close(u);
	} else {
		o(",\"uffd_errno\":%d", errno);
	}
	line_end();
}
#endif

static void set_swap(int on)
{
	if (!strcmp(swapdev, "none"))
		return;
	swapoff(swapdev); /* a fresh device: the allocator starts from the first slot */
	if (on && swapon(swapdev, 0) < 0) {
		line_begin();
		o("\"note\":\"swapon failed\",\"errno\":%d", errno);
		line_end();
	}
}

#ifndef RECLAIM_AGENT_TAP
/* ---- trace replay (issue 18) ---------------------------------------------------------- */

/*
 * The trace FILE (written by reclaim.crosscheck.replay into the initramfs): the magic
 * "RPL1", the pages and the requests as little-endian u32, then one little-endian u32 a
 * request: page << 1 | store. A child process maps the trace and locks the pages it has and
 * touches (mlockall(MCL_CURRENT | MCL_ONFAULT): the trace, its text, data and stack), so that
 * they stay resident and count with the guest's other memory, reclaim can take only the
 * trace's pages and the rusage counts the trace's faults alone ("self_locked"; before, reclaim
 * swapped out the child's stack and the text pages of the binary, a tmpfs file, during the
 * loop, and their first touch after it took a few major faults, more with MGLRU). It reads
 * /proc/zoneinfo, /proc/meminfo, /proc/vmstat and its rusage, maps PAGES pages (private
 * anonymous, or shmem: MAP_SHARED|MAP_ANONYMOUS) and touches them in trace order, each access
 * as recorded (a first load maps the zero page), then reads /proc/vmstat and its rusage again,
 * and /proc/zoneinfo and /proc/meminfo after the run (with its pages still mapped: what the
 * guest's kernel took during the run, its page tables, slab and swap cache; /proc/slabinfo's
 * pages of each cache before and after). "samples": every 1/16 of the requests, each zone's
 * "pages free" and per-cpu pages ([free, pcp] per zone in zoneinfo's order). One line: kind
 * "replay".
 */
static uint32_t le32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* /proc/pagetypeinfo: per zone and migratetype, the free pages (the free lists' counts of each
 * order times 2^order), and the pageblocks of each migratetype ("Number of blocks type"), as
 * {"free":[{"zone":Z,"type":T,"pages":N},...],"blocks":[{"zone":Z,"type":T,"blocks":N},...]} */
static void emit_pagetypeinfo(void)
{
	FILE *f = fopen("/proc/pagetypeinfo", "r");
	if (!f) {
		o("{}");
		return;
	}
	char line[512], types[8][24];
	int ntypes = 0, first = 1, in_blocks = 0;
	o("{\"free\":[");
	while (fgets(line, sizeof(line), f)) {
		char zone[32], type[24];
		int n = 0;
		if (!strncmp(line, "Number of blocks type", 21)) {
			char *p = line + 21;
			ntypes = 0;
			while (ntypes < 8 && sscanf(p, " %23s%n", types[ntypes], &n) == 1) {
				ntypes++;
				p += n;
			}
			in_blocks = 1;
			first = 1;
			o("],\"blocks\":[");
			continue;
		}
		if (!in_blocks && sscanf(line, "Node %*d, zone %31s type %23s%n", zone, type, &n) == 2) {
			/* "Node    0, zone      DMA, type    Unmovable  c0 c1 ...": zone keeps its comma */
			size_t zl = strlen(zone);
			if (zl && zone[zl - 1] == ',')
				zone[zl - 1] = 0;
			char *p = line + n;
			long long pages = 0, c;
			int k = 0;
			while (sscanf(p, " %lld%n", &c, &n) == 1) {
				pages += c << k++;
				p += n;
			}
			o("%s{\"zone\":", first ? "" : ",");
			ostr(zone);
			o(",\"type\":");
			ostr(type);
			o(",\"pages\":%lld}", pages);
			first = 0;
			continue;
		}
		if (in_blocks && sscanf(line, "Node %*d, zone %31s%n", zone, &n) == 1) {
			char *p = line + n;
			long long c;
			for (int k = 0; k < ntypes && sscanf(p, " %lld%n", &c, &n) == 1; k++) {
				o("%s{\"zone\":", first ? "" : ",");
				ostr(zone);
				o(",\"type\":");
				ostr(types[k]);
				o(",\"blocks\":%lld}", c);
				first = 0;
				p += n;
			}
		}
	}
	o("]}");
	fclose(f);
}

/* /proc/zoneinfo: per populated zone, its free pages, watermarks (as printed: wmark_pages(),
 * the watermark plus "boost", its watermark_boost, also kept) and managed pages, and
 * "pcp": the pages on its per-cpu lists ("count:" of each cpu's pageset), free but not in
 * "pages free" (NR_FREE_PAGES), and "protection": its lowmem_reserve[] */
static void emit_zoneinfo(void)
{
	FILE *f = fopen("/proc/zoneinfo", "r");
	if (!f)
		return;
	char line[256], zone[64] = "";
	int first = 1, open_zone = 0;
	long long pcp = 0;
	o("[");
	while (fgets(line, sizeof(line), f)) {
		char key[64];
		long long v;
		if (sscanf(line, "Node %*d, zone %63s", zone) == 1) {
			if (open_zone)
				o(",\"pcp\":%lld}", pcp);
			pcp = 0;
			o("%s{\"zone\":", first ? "" : ",");
			ostr(zone);
			first = 0;
			open_zone = 1;
			continue;
		}
		if (!open_zone)
			continue;
		if (sscanf(line, " pages free %lld", &v) == 1) {
			o(",\"free\":%lld", v);
			continue;
		}
		if (sscanf(line, " count: %lld", &v) == 1) {
			pcp += v;
			continue;
		}
		if (strstr(line, "protection: (")) {
			/* lowmem_reserve[] of the zone against each higher zone index */
			char *p = strstr(line, "protection: (") + 13;
			o(",\"protection\":[");
			for (int i = 0; *p && *p != ')'; i++) {
				char *end;
				long long r = strtoll(p, &end, 10);
				if (end == p)
					break;
				o("%s%lld", i ? "," : "", r);
				p = end;
				while (*p == ',' || *p == ' ')
					p++;
			}
			o("]");
			continue;
		}
		if (sscanf(line, " %63s %lld", key, &v) == 2 &&
		    (!strcmp(key, "boost") || !strcmp(key, "min") || !strcmp(key, "low") ||
		     !strcmp(key, "high") || !strcmp(key, "spanned") || !strcmp(key, "present") ||
		     !strcmp(key, "managed")))
			o(",\"%s\":%lld", key, v);
	}
	if (open_zone)
		o(",\"pcp\":%lld}", pcp);
	o("]");
	fclose(f);
}

static void emit_rusage(const struct rusage *a, const struct rusage *b)
{
	o("{\"minflt\":%ld,\"majflt\":%ld}", b->ru_minflt - a->ru_minflt, b->ru_majflt - a->ru_majflt);
}

/* One sample of /proc/zoneinfo for "samples": [[free, pcp, boost], ...], a triple per zone
 * (populated or not, in zoneinfo's order): NR_FREE_PAGES ("pages free"), the pages on the
 * zone's per-cpu lists (the "count:" of each cpu's pageset) and its watermark_boost
 * ("boost"; a run recorded before has pairs). */
static void emit_zone_sample(void)
{
	FILE *f = fopen("/proc/zoneinfo", "r");
	if (!f)
		return;
	char line[256];
	long long free = -1, pcp = 0, boost = 0, v;
	int first = 1;
	o("[");
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Node ", 5)) {
			if (free >= 0)
				o("%s[%lld,%lld,%lld]", first ? "" : ",", free, pcp, boost), first = 0;
			free = 0;
			pcp = 0;
			boost = 0;
		} else if (sscanf(line, " pages free %lld", &v) == 1)
			free = v;
		else if (sscanf(line, " boost %lld", &v) == 1)
			boost = v;
		else if (sscanf(line, " count: %lld", &v) == 1)
			pcp += v;
	}
	if (free >= 0)
		o("%s[%lld,%lld,%lld]", first ? "" : ",", free, pcp, boost);
	o("]");
	fclose(f);
}

/* "zone_trace N" in the input: N points a run (0, the default: none; each reads
 * /proc/zoneinfo in the replay loop, which takes the guest's time). */
static unsigned zone_trace_points;

/* A point of "zone_trace" into BUF: each zone's free pages and watermark_boost of
 * /proc/zoneinfo as one flat list [free, boost, free, boost, ...] in zoneinfo's order. */
static void zone_trace_point(char *buf, size_t cap, size_t *len, int first)
{
	FILE *f = fopen("/proc/zoneinfo", "r");
	if (!f)
		return;
	char line[256];
	long long v;
	int zones = 0;
	snprintf(line, sizeof(line), "%s[", first ? "" : ",");
	if (*len + strlen(line) < cap) {
		memcpy(buf + *len, line, strlen(line));
		*len += strlen(line);
	}
	while (fgets(line, sizeof(line), f)) {
		char num[32];
		int n = 0;
		if (sscanf(line, " pages free %lld", &v) == 1)
			n = snprintf(num, sizeof(num), "%s%lld", zones++ ? "," : "", v);
		else if (sscanf(line, " boost %lld", &v) == 1)
			n = snprintf(num, sizeof(num), ",%lld", v);
		if (n > 0 && *len + (size_t)n + 2 < cap) {
			memcpy(buf + *len, num, (size_t)n);
			*len += (size_t)n;
		}
	}
	if (*len + 2 < cap)
		buf[(*len)++] = ']';
	fclose(f);
}

/* /proc/slabinfo: each cache's pages (num_slabs * pagesperslab) as {"name":pages,...} (only
 * caches holding pages), for the slab a run grows (e.g. the swap cache's xarray nodes in
 * radix_tree_node); {} without /proc/slabinfo. */
static void emit_slab_pages(void)
{
	FILE *f = fopen("/proc/slabinfo", "r");
	o("{");
	if (!f) {
		o("}");
		return;
	}
	char line[512], name[64];
	long long ppslab, slabs;
	int first = 1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %*d %*d %*d %*d %lld : tunables %*d %*d %*d : slabdata %*d %lld",
			   name, &ppslab, &slabs) == 3 &&
		    slabs > 0) {
			o("%s", first ? "" : ",");
			ostr(name);
			o(":%lld", ppslab * slabs);
			first = 0;
		}
	}
	o("}");
	fclose(f);
}

/* MGLRU's debugfs view (issue 19): /sys/kernel/debug/lru_gen_full (lru_gen_seq_show with
 * lru_gen_seq_show_full, mm/vmscan.c 6.12: each generation's seq, age and sizes, the tiers'
 * refault counters, the page-table walk's stats) before and after a replay, and the short
 * /sys/kernel/debug/lru_gen at each sample. Only with MGLRU on (lru_gen/enabled not 0);
 * debugfs is mounted here the first time. */
static int lru_gen_on = -1;

static int lru_gen_debugfs(void)
{
	if (lru_gen_on < 0) {
		char buf[32] = "";
		int fd = open("/sys/kernel/mm/lru_gen/enabled", O_RDONLY);
		if (fd >= 0) {
			ssize_t r = read(fd, buf, sizeof(buf) - 1);
			buf[r > 0 ? r : 0] = 0;
			close(fd);
		}
		lru_gen_on = strtoul(buf, NULL, 0) != 0;
		if (lru_gen_on && access("/sys/kernel/debug/lru_gen", R_OK) != 0)
			mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	}
	return lru_gen_on;
}

/* the text of FILE as a JSON string into the current line ("" when it cannot be read) */
static void emit_text_file(const char *path)
{
	static char text[16384];
	size_t len = 0;
	int fd = open(path, O_RDONLY);
	if (fd >= 0) {
		ssize_t r;
		while (len < sizeof(text) - 1 && (r = read(fd, text + len, sizeof(text) - 1 - len)) > 0)
			len += (size_t)r;
		close(fd);
	}
	text[len] = 0;
	ostr(text);
}

/* ---- the run's direct reclaims, timed by the kernel's tracepoints ----
 * tracefs (mounted here if it is not), events vmscan/mm_vmscan_direct_reclaim_begin and _end
 * (try_to_free_pages, mm/vmscan.c) and vmscan/mm_vmscan_throttled (reclaim_throttle), for the
 * replaying process only (set_event_pid), in a 256 KiB buffer (64 pages, taken before the
 * run's first /proc/zoneinfo, so that they count as held). "direct_reclaim": n reclaims and
 * ns their summed duration (begin to end, the trace clock), n_none / ns_none those that
 * reclaimed nothing, max_ns, reclaimed (their nr_reclaimed summed), throttled_noprogress /
 * throttled_writeback / throttled_other (mm_vmscan_throttled by reason) and lost (the
 * buffer's overrun: nonzero, the counts are short). {} when tracing is unavailable. */
static int trace_ok;

static int trace_write(const char *rel, const char *val)
{
	char path[256];
	snprintf(path, sizeof(path), "/sys/kernel/tracing/%s", rel);
	int fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static void trace_start(void)
{
	static const char *ev[] = {"vmscan/mm_vmscan_direct_reclaim_begin",
				   "vmscan/mm_vmscan_direct_reclaim_end", "vmscan/mm_vmscan_throttled"};
	char buf[128];
	if (access("/sys/kernel/tracing/tracing_on", F_OK) != 0)
		mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL);
	trace_ok = trace_write("tracing_on", "0") == 0 && trace_write("trace", "") == 0 &&
		   trace_write("buffer_size_kb", "256") == 0;
	snprintf(buf, sizeof(buf), "%d", (int)getpid());
	trace_ok = trace_ok && trace_write("set_event_pid", buf) == 0;
	for (int i = 0; i < 3 && trace_ok; i++) {
		snprintf(buf, sizeof(buf), "events/%s/enable", ev[i]);
		trace_ok = trace_write(buf, "1") == 0;
	}
	trace_ok = trace_ok && trace_write("tracing_on", "1") == 0;
}

/* "   replay-97  [000] .....   12.345678: EVENT: ..." : the timestamp before ": EVENT" in ns */
static long long trace_ns(const char *line, const char *at)
{
	const char *p = at;
	while (p > line && p[-1] != ' ')
		p--;
	long long sec = 0, usec = 0;
	if (sscanf(p, "%lld.%lld", &sec, &usec) != 2)
		return -1;
	return sec * 1000000000LL + usec * 1000LL;
}

static void trace_emit(void)
{
	if (!trace_ok) {
		o("{}");
		return;
	}
	trace_write("tracing_on", "0");
	long long n = 0, ns = 0, n0 = 0, ns0 = 0, mx = 0, rec = 0, thr[3] = {0, 0, 0}, lost = 0;
	long long begin = -1;
	char line[512];
	FILE *f = fopen("/sys/kernel/tracing/trace", "r");
	while (f && fgets(line, sizeof(line), f)) {
		const char *at;
		long long r, t;
		if ((at = strstr(line, ": mm_vmscan_direct_reclaim_begin:"))) {
			begin = trace_ns(line, at);
		} else if ((at = strstr(line, ": mm_vmscan_direct_reclaim_end:"))) {
			const char *v = strstr(at, "nr_reclaimed=");
			t = trace_ns(line, at);
			if (begin < 0 || t < begin || !v || sscanf(v + 13, "%lld", &r) != 1) {
				begin = -1;
				continue;
			}
			n++;
			ns += t - begin;
			mx = t - begin > mx ? t - begin : mx;
			rec += r;
			if (!r) {
				n0++;
				ns0 += t - begin;
			}
			begin = -1;
		} else if ((at = strstr(line, ": mm_vmscan_throttled:"))) {
			thr[strstr(at, "NOPROGRESS") ? 0 : strstr(at, "WRITEBACK") ? 1 : 2]++;
		}
	}
	if (f)
		fclose(f);
	f = fopen("/sys/kernel/tracing/per_cpu/cpu0/stats", "r");
	while (f && fgets(line, sizeof(line), f)) {
		long long v;
		if (sscanf(line, "overrun: %lld", &v) == 1)
			lost += v;
	}
	if (f)
		fclose(f);
	o("{\"n\":%lld,\"ns\":%lld,\"n_none\":%lld,\"ns_none\":%lld,\"max_ns\":%lld,\"reclaimed\":%lld,"
	  "\"throttled_noprogress\":%lld,\"throttled_writeback\":%lld,\"throttled_other\":%lld,"
	  "\"lost\":%lld}",
	  n, ns, n0, ns0, mx, rec, thr[0], thr[1], thr[2], lost);
}

static int replay_child(const char *path, int shmem)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 10;
	off_t size = lseek(fd, 0, SEEK_END);
	if (size < 12)
		return 11;
	const unsigned char *t = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	close(fd);
	if (t == MAP_FAILED)
		return 12;
	/* MCL_CURRENT only: the trace's pages, mapped below, stay reclaimable; MCL_ONFAULT: the
	 * pages it has are locked, the rest of its mappings (bss, the binary's other text) only
	 * once touched, so that it takes no memory it did not have */
	int self_locked = mlockall(MCL_CURRENT | MCL_ONFAULT) == 0;
	if (memcmp(t, "RPL1", 4))
		return 13;
	uint64_t pages = le32(t + 4), n = le32(t + 8);
	if ((off_t)(12 + 4 * n) > size)
		return 14;
	const unsigned char *rec = t + 12;
	trace_start();
	line_begin();
	o("\"kind\":\"replay\",\"replay\":");
	ostr(cur_scenario);
	o(",\"run\":%d,\"pages\":%llu,\"requests\":%llu,\"self_locked\":%d,\"zoneinfo\":",
	  cur_step, (unsigned long long)pages, (unsigned long long)n, self_locked);
	emit_zoneinfo();
	o(",\"pagetypeinfo\":");
	emit_pagetypeinfo();
	o(",\"meminfo\":");
	emit_kv_file("/proc/meminfo", ":");
	o(",\"slab_before\":");
	emit_slab_pages();
	o(",\"vmstat_before\":");
	emit_kv_file("/proc/vmstat", "");
	int lg = lru_gen_debugfs();
	if (lg) {
		o(",\"lru_gen_before\":");
		emit_text_file("/sys/kernel/debug/lru_gen_full");
	}
	struct rusage r0, r1;
	getrusage(RUSAGE_SELF, &r0);
	long t0 = now_ms();
	int flags = shmem ? MAP_SHARED | MAP_ANONYMOUS : MAP_PRIVATE | MAP_ANONYMOUS;
	volatile uint64_t *m = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (m == MAP_FAILED)
		return 15;
	uint64_t sum = 0, every = n / 16 ? n / 16 : 1;
	o(",\"samples\":[");
	/* the samples' lru_gen texts, emitted after the samples */
	static char lgs[32768];
	size_t lgslen = 0;
	/* the zones' free pages and boost at zone_trace_points points, for "zone_trace" */
	static char zt[32768];
	size_t ztlen = 0;
	uint64_t fine = zone_trace_points && n / zone_trace_points ? n / zone_trace_points : 1;
	for (uint64_t i = 0; i < n; i++) {
		if (zone_trace_points && i && i % fine == 0)
			zone_trace_point(zt, sizeof(zt), &ztlen, ztlen == 0);
		if (i && i % every == 0) {
			if (i != every)
				o(",");
			emit_zone_sample();
			if (lg) {
				size_t mark = outlen;
				o("%s", i != every ? "," : "");
				emit_text_file("/sys/kernel/debug/lru_gen");
				size_t k = outlen - mark;
				if (lgslen + k < sizeof(lgs)) {
					memcpy(lgs + lgslen, out + mark, k);
					lgslen += k;
				}
				outlen = mark;
			}
		}
		uint32_t r = le32(rec + 4 * i);
		volatile uint64_t *a = m + (uint64_t)(r >> 1) * (PAGE / sizeof(uint64_t));
		if (r & 1)
			*a = i + 1;
		else
			sum += *a;
	}
	long ms = now_ms() - t0;
	getrusage(RUSAGE_SELF, &r1);
	zt[ztlen] = 0;
	o("],\"zone_trace\":[%s]", zt);
	o(",\"vmstat_after\":");
	emit_kv_file("/proc/vmstat", "");
	if (lg) {
		o(",\"lru_gen_after\":");
		emit_text_file("/sys/kernel/debug/lru_gen_full");
		lgs[lgslen] = 0;
		o(",\"lru_gen_samples\":[%s]", lgs);
	}
	o(",\"direct_reclaim\":");
	trace_emit();
	o(",\"zoneinfo_after\":");
	emit_zoneinfo();
	o(",\"meminfo_after\":");
	emit_kv_file("/proc/meminfo", ":");
	o(",\"slab_after\":");
	emit_slab_pages();
	o(",\"rusage\":");
	emit_rusage(&r0, &r1);
	o(",\"status\":");
	emit_kv_file("/proc/self/status", ":");
	o(",\"ms\":%ld,\"sum\":%llu", ms, (unsigned long long)sum);
	line_end();
	return 0;
}

static void replay(const char *name, const char *path, const char *kind, int runi)
{
	set_swap(1); /* a fresh swap device: the run starts from the first slot */
	long t0 = now_ms();
	pid_t pid = fork();
	if (pid == 0) {
		cur_scenario = name;
		cur_step = runi;
		_exit(replay_child(path, !strcmp(kind, "shmem")));
	}
	int status = 0;
	waitpid(pid, &status, 0);
	line_begin();
	o("\"kind\":\"replay_end\",\"replay\":");
	ostr(name);
	o(",\"run\":%d,\"ms\":%ld,\"status\":%d", runi, now_ms() - t0, status);
	line_end();
}

static void sysctl_set(const char *key, const char *value)
{
	char path[256];
	snprintf(path, sizeof(path), "/proc/sys/%s", key);
	int fd = open(path, O_WRONLY);
	int ok = fd >= 0 && write(fd, value, strlen(value)) == (ssize_t)strlen(value);
	int e = errno;
	if (fd >= 0)
		close(fd);
	line_begin();
	o("\"kind\":\"sysctl\",\"key\":");
	ostr(key);
	o(",\"value\":");
	ostr(value);
	o(",\"ok\":%d", ok);
	if (!ok)
		o(",\"errno\":%d", e);
	line_end();
}

static int run(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		return 1;
	}
	static char *lines[8192];
	int n = 0;
	char buf[512];
	while (n < 8192 && fgets(buf, sizeof(buf), f))
		lines[n++] = strdup(buf);
	fclose(f);
	header();
	for (int i = 0; i < n;) {
		char *w[8];
		char tmp[512];
		snprintf(tmp, sizeof(tmp), "%s", lines[i]);
		int nw = split(tmp, w, 8);
		if (nw >= 2 && !strcmp(w[0], "swapdev")) {
			swapdev = strdup(w[1]);
			i++;
			continue;
		}
		if (nw >= 2 && !strcmp(w[0], "zone_trace")) {
			zone_trace_points = (unsigned)strtoul(w[1], NULL, 10);
			if (zone_trace_points > 1024)
				zone_trace_points = 1024;
			i++;
			continue;
		}
		if (nw >= 3 && !strcmp(w[0], "sysctl")) {
			sysctl_set(w[1], w[2]);
			i++;
			continue;
		}
		if (nw >= 5 && !strcmp(w[0], "replay")) {
			replay(w[1], w[2], w[3], atoi(w[4]));
			i++;
			continue;
		}
		if (nw < 3 || strcmp(w[0], "scenario")) {
			i++;
			continue;
		}
		char name[256];
		snprintf(name, sizeof(name), "%s", w[1]);
		int swap = strcmp(w[2], "noswap") != 0;
		int j = i + 1;
		while (j < n && strncmp(lines[j], "end", 3))
			j++;
		set_swap(swap);
		long t0 = now_ms();
		pid_t pid = fork();
		if (pid == 0) {
			monitor(name, lines + i + 1, j - i - 1);
			_exit(0);
		}
		int status = 0;
		long dl = now_ms() + 120000;
		while (waitpid(pid, &status, WNOHANG) == 0) {
			if (now_ms() > dl) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				break;
			}
			usleep(2000);
		}
		line_begin();
		o("\"scenario\":");
		ostr(name);
		o(",\"end\":1,\"ms\":%ld,\"status\":%d", now_ms() - t0, status);
		line_end();
		i = j + 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "insmod")) {
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			perror(argv[2]);
			return 1;
		}
		const char *params = argc >= 4 ? argv[3] : "";
		int flags = strstr(argv[2], ".ko.") ? MODULE_INIT_COMPRESSED_FILE : 0;
		if (syscall(SYS_finit_module, fd, params, flags) < 0 && errno != EEXIST) {
			perror("finit_module");
			return 1;
		}
		return 0;
	}
	if (argc >= 3 && !strcmp(argv[1], "run"))
		return run(argv[2]);
	fprintf(stderr, "usage: agent insmod FILE [PARAMS] | agent run FILE\n");
	return 2;
}
#else /* RECLAIM_AGENT_TAP */

/* ---- the kselftest driver of an exported scenario ------------------------------------- */

/* one step of an exported scenario: the agent's line, its label and the model's observation */
struct reclaim_step {
	const char *line, *label, *expect;
	int hint;
};

static const struct reclaim_step *tap_steps;
static int tap_failed;

static void tap_before(int i) { rhint = tap_steps[i].hint; }

static void tap_after(int i)
{
	const struct reclaim_step *s = &tap_steps[i];
	if (!strcmp(rtext, s->expect))
		return;
	tap_failed++;
	ksft_print_msg("step %d (%s): kernel \"%s\", model \"%s\"\n", i, s->label, rtext, s->expect);
}

/*
 * Run the n steps of scenario name in a monitor process (forked: the scenario's processes,
 * threads and userfaultfds end with it): KSFT_PASS if the kernel observed what the model did
 * at every step, KSFT_FAIL otherwise (a "# step ..." line says where).
 */
static int reclaim_tap_scenario(const char *name, const struct reclaim_step *steps, int n)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		ksft_perror("fork");
		return KSFT_FAIL;
	}
	if (pid == 0) {
		static char *lines[256];
		if (n > 256)
			_exit(KSFT_FAIL);
		for (int i = 0; i < n; i++)
			lines[i] = (char *)steps[i].line;
		tap_steps = steps;
		before_step = tap_before;
		after_step = tap_after;
		monitor(name, lines, n);
		fflush(stdout);
		_exit(tap_failed ? KSFT_FAIL : KSFT_PASS);
	}
	int status = 0;
	long dl = now_ms() + 120000;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now_ms() > dl) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ksft_print_msg("%s: no verdict within 120 s\n", name);
			return KSFT_FAIL;
		}
		usleep(2000);
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	ksft_print_msg("%s: the monitor died of signal %d\n", name, WTERMSIG(status));
	return KSFT_FAIL;
}

/* a userfaultfd as the process under test gets one; 0 and its UFFD_FEATURE_* mask, or -1 and why not */
static int reclaim_uffd_probe(unsigned long long *features, char *why, size_t n)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int e = errno;
	if (fd < 0) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		int de = errno;
		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
			de = errno;
			close(dev);
		}
		if (fd < 0) {
			char sys[16] = "?";
			int s = open("/proc/sys/vm/unprivileged_userfaultfd", O_RDONLY);
			if (s >= 0) {
				ssize_t r = read(s, sys, sizeof(sys) - 1);
				sys[r > 0 ? r : 0] = 0;
				sys[strcspn(sys, "\n")] = 0;
				close(s);
			}
			snprintf(why, n,
				 "no userfaultfd for uid %d: userfaultfd(2) %s, /dev/userfaultfd %s "
				 "(vm.unprivileged_userfaultfd=%s; run as root or set it to 1)",
				 (int)geteuid(), strerror(e), strerror(de), sys);
			return -1;
		}
	}
	struct uffdio_api api = { .api = UFFD_API };
	int rc = ioctl(fd, UFFDIO_API, &api);
	e = errno;
	close(fd);
	if (rc < 0) {
		snprintf(why, n, "UFFDIO_API failed: %s", strerror(e));
		return -1;
	}
	*features = api.features;
	return 0;
}

static int reclaim_swap_devices(void)
{
	FILE *f = fopen("/proc/swaps", "r");
	if (!f)
		return 0;
	char line[512];
	int n = -1; /* the header line */
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n < 0 ? 0 : n;
}

/*
 * The swap a scenario needs: with $RECLAIM_SWAPDEV (root), that device is switched off and,
 * unless the scenario needs no swap, on again (a fresh device: the first slot is slot 1, as
 * on the model); without it, the machine's swap as it is. 0 to run, -1 and why not.
 */
static int reclaim_prepare_swap(int swap, int no_swap, int fresh, char *why, size_t n)
{
	const char *dev = getenv("RECLAIM_SWAPDEV");
	if (dev && *dev) { /* as the agent's run(): a fresh device for every scenario */
		swapdev = dev;
		set_swap(!no_swap);
	}
	int have = reclaim_swap_devices();
	if (swap && !have) {
		snprintf(why, n, "needs swap: no active swap device (/proc/swaps); swapon one, or "
				 "set RECLAIM_SWAPDEV=DEVICE (root)");
		return -1;
	}
	if (swap && fresh && !(dev && *dev)) {
		snprintf(why, n, "observes swap slots: needs a fresh swap device, set "
				 "RECLAIM_SWAPDEV=DEVICE (root; it is swapped off and on)");
		return -1;
	}
	if (no_swap && have) {
		snprintf(why, n, "needs a machine without swap (swapoff, or RECLAIM_SWAPDEV=DEVICE)");
		return -1;
	}
	return 0;
}
#endif /* RECLAIM_AGENT_TAP */
