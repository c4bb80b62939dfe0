"""The app listens where Gradio's conventions say (Spaces set Gradio's own variables)."""
from visattn.launch import server_address


def test_gradio_variables_then_port_then_local_defaults():
    assert server_address({}) == {"server_name": "127.0.0.1", "server_port": 7860}
    assert server_address({"PORT": "8080"}) == {"server_name": "127.0.0.1", "server_port": 8080}
    env = {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861", "PORT": "8080"}
    assert server_address(env) == {"server_name": "0.0.0.0", "server_port": 7861}
    assert server_address({"SYSTEM": "spaces"})["server_name"] == "0.0.0.0"
