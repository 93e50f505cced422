<%-- GET /sleep?ms=N: holds the worker thread N ms without using the CPU, as a blocking
     database call would. --%>
<%@ page session="false" contentType="text/plain; charset=UTF-8" pageEncoding="UTF-8"
         trimDirectiveWhitespaces="true" %>
<%@ include file="answer.jspf" %>
<%
    long asked = askedMs(request);
    if (asked < 0) {
        answer(response, out, 400, usage("/sleep"));
    } else {
        long ms = Math.min(asked, MAX_WORK_MS);
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        answer(response, out, 200, "slept " + ms + " ms" + capNote(asked));
    }
%>
