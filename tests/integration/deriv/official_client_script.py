"""Runs inside a throwaway venv with python-deriv-api: authorize → proposal → buy → follow.

Kept as a file (not an inline string) so it reads as what a Deriv API user would write.
Usage: python official_client_script.py ENDPOINT TOKEN; prints the settled status.
"""

import asyncio
import sys

from deriv_api import DerivAPI


async def main(endpoint: str, token: str) -> None:
    api = DerivAPI(endpoint=endpoint, app_id=1089)
    auth = await api.authorize(token)
    assert auth["authorize"]["currency"] == "USD", auth
    proposal = await api.proposal(
        {
            "proposal": 1,
            "amount": 10,
            "basis": "stake",
            "contract_type": "CALL",
            "currency": "USD",
            "duration": 15,
            "duration_unit": "s",
            "symbol": "R_100",
        }
    )
    buy = await api.buy({"buy": proposal["proposal"]["id"], "price": 10})
    contract_id = buy["buy"]["contract_id"]
    settled: asyncio.Future = asyncio.get_running_loop().create_future()

    def on_update(message: dict) -> None:
        contract = message["proposal_open_contract"]
        if contract.get("is_sold") and not settled.done():
            settled.set_result(contract)

    source = await api.subscribe(
        {"proposal_open_contract": 1, "contract_id": contract_id, "subscribe": 1}
    )
    source.subscribe(on_update)
    contract = await asyncio.wait_for(settled, 10)
    print(f"contract {contract_id} {contract['status']} profit {contract['profit']}")
    await api.clear()


asyncio.run(main(sys.argv[1], sys.argv[2]))
