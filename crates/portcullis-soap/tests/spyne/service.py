"""A small SOAP 1.1 service built with spyne, a SOAP server this project did not write.

Portcullis' integration tests start it on 127.0.0.1 with an ephemeral port, read the WSDL it
publishes at `/?wsdl`, and call every operation through portcullis-soap's envelopes. The
first line written to stdout is `PORT <n>` once the socket is bound, so the test knows where
to connect without racing for a fixed port.

Operations (document/literal wrapped, spyne's default):
- get_person(person_id)      -> Person: nested Address, an integer, a boolean, a nillable field
- list_tags(count)           -> array of strings (an `stringArray` wrapper with repeated children)
- list_people(count)         -> array of nested complex types
- describe_nickname(nickname) -> string; takes a nillable input (xsi:nil in the request)
- add(a, b)                  -> integer
- is_even(n)                 -> boolean
- fail(kind)                 -> a Client or a Server fault
"""

import logging
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from spyne import (Application, Array, Boolean, ComplexModel, Fault, Integer, ServiceBase,
                   Unicode, rpc)
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

TNS = "urn:portcullis:test:people"


class Address(ComplexModel):
    __namespace__ = TNS
    street = Unicode
    city = Unicode


class Person(ComplexModel):
    __namespace__ = TNS
    name = Unicode
    age = Integer
    active = Boolean
    # min_occurs=1 makes spyne write None as xsi:nil="true" instead of leaving it out.
    nickname = Unicode(nillable=True, min_occurs=1)
    address = Address


def make_person(person_id):
    return Person(
        name="Ada <Lovelace> & co",
        age=36 + person_id,
        active=person_id % 2 == 1,
        nickname=None if person_id == 1 else "countess",
        address=Address(street="12 St James's Square", city="London"),
    )


class PeopleService(ServiceBase):
    @rpc(Integer, _returns=Person)
    def get_person(ctx, person_id):
        return make_person(person_id)

    @rpc(Integer, _returns=Array(Unicode))
    def list_tags(ctx, count):
        return ["tag-%d" % i for i in range(count)]

    @rpc(Integer, _returns=Array(Person))
    def list_people(ctx, count):
        return [make_person(i) for i in range(1, count + 1)]

    @rpc(Unicode(nillable=True), _returns=Unicode)
    def describe_nickname(ctx, nickname):
        return "no nickname" if nickname is None else "nickname: " + nickname

    @rpc(Integer, Integer, _returns=Integer)
    def add(ctx, a, b):
        return a + b

    @rpc(Integer, _returns=Boolean)
    def is_even(ctx, n):
        return n % 2 == 0

    @rpc(Unicode, _returns=Unicode)
    def fail(ctx, kind):
        if kind == "client":
            raise Fault(faultcode="Client.InvalidInput", faultstring="kind was client")
        raise Fault(faultcode="Server", faultstring="the server broke on purpose")


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def main():
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    app = Application(
        [PeopleService],
        tns=TNS,
        in_protocol=Soap11(validator="lxml"),
        out_protocol=Soap11(),
    )
    server = make_server("127.0.0.1", 0, WsgiApplication(app), handler_class=QuietHandler)
    print("PORT %d" % server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
