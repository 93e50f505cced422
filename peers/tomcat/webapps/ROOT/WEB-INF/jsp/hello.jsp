<%-- GET /hello: the baseline, 13 bytes. --%>
<%@ page session="false" contentType="text/plain; charset=UTF-8" pageEncoding="UTF-8"
         trimDirectiveWhitespaces="true" %>
<%@ include file="answer.jspf" %>
<% answer(response, out, 200, "Hello, World!"); %>
