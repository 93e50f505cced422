<%-- GET /cpu?ms=N: keeps the worker thread computing until it has used N ms of CPU time
     (its own CPU clock, not the wall clock: a busy machine makes it slower, not cheaper). --%>
<%@ page session="false" contentType="text/plain; charset=UTF-8" pageEncoding="UTF-8"
         trimDirectiveWhitespaces="true" %>
<%@ include file="answer.jspf" %>
<%!
    /** Where each result goes, so the JIT cannot drop the computation as unused. */
    static volatile long sink;

    static long burnCpu(long ms) {
        java.lang.management.ThreadMXBean threads =
                java.lang.management.ManagementFactory.getThreadMXBean();
        // -1 if the JVM measures no thread CPU time; then the wall clock ends the loop.
        boolean cpuClock = threads.getCurrentThreadCpuTime() >= 0;
        long start = cpuClock ? threads.getCurrentThreadCpuTime() : System.nanoTime();
        long budget = ms * 1_000_000L;
        long x = 0x9e3779b97f4a7c15L;
        do {
            for (int i = 0; i < 10_000; i++) { // xorshift: cheap, and each step needs the last
                x ^= x << 13;
                x ^= x >>> 7;
                x ^= x << 17;
            }
        } while ((cpuClock ? threads.getCurrentThreadCpuTime() : System.nanoTime()) - start < budget);
        sink = x;
        return x;
    }
%>
<%
    long asked = askedMs(request);
    if (asked < 0) {
        answer(response, out, 400, usage("/cpu"));
    } else {
        long ms = Math.min(asked, MAX_WORK_MS);
        burnCpu(ms);
        answer(response, out, 200, "computed for " + ms + " ms of CPU time" + capNote(asked));
    }
%>
