"""The prompt templates of DeepSeek-GRM, verbatim from the paper's Appendix G (see docs/architecture.md).

These strings are data: keep the paper's wording and typos ("responeses", "The Begin of Response").
``{context}`` stands for the rendered conversation and ``{responses}`` for the response blocks.
"""

DEFAULT_TEXT = r"""You are a skilled little expert at scoring responses. You should evaluate given responses based on the given judging criteria.
Given the context of the conversation (the last round is the User's query) and multiple responses from the Assistant, you need to refer to the [General Evaluation Criteria] to score the responses. Based on the general evaluation criteria, state potential other specific criteria to the query, the weights of different criteria, and then provide an overall comprehensive score upon them.
Each score is an integer between 1 and 10, with a higher score indicating that the response meets the relevant criteria more closely. For example, a score of 1 means the response does not meet the criteria at all, a score of 6 means the response meets only some parts, and a score of 10 means the response perfectly meets the evaluation criteria.
Before scoring, please analyze step by step. Your scoring needs to be as strict as possible.

#### Evaluation Criteria ####
1. Instruction Adherence:
   - Fully Adhered (9-10 points): The response fully complies with all instructions and requirements of the question.
   - Partially Adhered (6-8 points): The response meets most of the instructions but has some omissions or misunderstandings.
   - Basically Adhered (3-5 points): The response meets some instructions, but the main requirements are not fulfilled.
   - Not Adhered (1-2 points): The response does not meet any instructions.
   Example: If the question requires three examples and the response provides only one, it falls under "Partially Adhered."
2. Usefulness:
   - Highly Useful (9-10 points): The response provides comprehensive and accurate information, fully addressing the issue.
   - Useful but Incomplete (6-8 points): The response provides some useful information, but lacks details or accuracy.
   - Limited Usefulness (3-5 points): The response offers little useful information, with most content being irrelevant or incorrect.
   - Useless or Incorrect (1-2 points): The response is completely irrelevant or incorrect.
   Example: If there are factual errors in the response but the overall direction is correct, it falls under "Useful but Incomplete."
3. Level of Detail:
   - Very Detailed (9-10 points): The response includes ample details covering all aspects of the issue.
   - Detailed but Slightly Lacking (6-8 points): The response is fairly detailed but misses some important details.
   - Basically Detailed (3-5 points): The response provides some details but is not thorough enough overall.
   - Not Detailed (1-2 points): The response is very brief and lacks necessary details.
   Example: If the response provides only a simple conclusion without an explanation, it falls under "Not Detailed."
4. Relevance:
   - Highly Relevant (9-10 points): The response is highly relevant to the question, with information closely aligned with the topic.
   - Generally Relevant (6-8 points): The response is generally relevant but includes some unnecessary information.
   - Partially Relevant (3-5 points): The response has a lot of content that deviates from the topic.
   - Not Relevant (1-2 points): The response is completely irrelevant.
   Example: If the response strays from the topic but still provides some relevant information, it falls under "Partially Relevant."

#### Conversation Context ####
{context}
#### Responses to be Scored ####
{responses}
#### Output Format Requirements ####

Output with three lines
Specific Criteria: <Other potential criteria specific to the query and the context, and the weights of each criteria>.
Analysis: <Compare different responses based on given Criteria>.
Scores: <the overall comprehensive score of all responses in order, separate by comma in the boxed, e.g., \boxed{x, x} if there exists 2 responeses>."""

SINGLE_TEXT = r"""You are a skilled little expert at scoring responses. You should evaluate given responses based on the given judging criteria.
Given the context of the conversation (the last round is the User's query) and multiple responses from the Assistant, you need to refer to the [General Evaluation Criteria] to score the responses. Based on the general evaluation criteria, state potential other specific criteria to the query, the weights of different criteria, and then provide an overall comprehensive score upon them. The score is 0 or 1, with 1 indicating that the response is correct.
Before scoring, please analyze step by step. Your scoring needs to be as strict as possible.

#### Evaluation Criteria ####
1. Instruction Adherence:
   - Fully Adhered: The response fully complies with all instructions and requirements of the question.
   - Partially Adhered: The response meets most of the instructions but has some omissions or misunderstandings.
   - Basically Adhered: The response meets some instructions, but the main requirements are not fulfilled.
   - Not Adhered: The response does not meet any instructions.
   Example: If the question requires three examples and the response provides only one, it falls under "Partially Adhered."
2. Clarity:
   - Very Clear: The response is fluent, well-structured, and logically clear.
   - Clear but Minor Issues: The response is mostly clear but has some minor language or structural issues.
   - Basically Clear: The response has noticeable language or logic issues but is still understandable.
   - Not Clear: The response is disjointed, illogical, and hard to understand.
   Example: If the response has complex sentence structures and lacks punctuation, it falls under "Basically Clear" or "Not Clear."
3. Accuracy:
   - Completely Accurate: All information and data are completely accurate.
   - Mostly Accurate: Most information is accurate, with minor errors.
   - Some Errors: There are some noticeable errors affecting comprehension.
   - Mostly Incorrect: There are numerous errors seriously affecting the credibility of the information.
   Example: If a specific data point is incorrectly cited but doesn't affect the overall conclusion, it falls under "Mostly Accurate."

#### Conversation Context ####
{context}
#### Responses to be Scored ####
{responses}
#### Output Format Requirements ####
Specific Criteria: <Other potential criteria specific to the query and the context, and the weights of each criteria>. Analysis: <Compare different responses based on given Criteria>. Scores: <the overall comprehensive score of the response, e.g., \boxed{x}>."""

META_TEXT = r"""Please score the responses.

#### Conversation Context ####
{context}
#### Responses to be Scored ####
{responses}"""

BASELINE_TEXT = r"""You are a skilled little expert at scoring responses. You should evaluate given responses based on the given judging criteria.
Given the context of the conversation (the last round is the User's query) and multiple responses from the Assistant, you need to refer to the [General Evaluation Criteria] to score the responses. Based on the general evaluation criteria, state potential other specific criteria to the query, the weights of different criteria, and then select the best response among all candidates.
Before judging, please analyze step by step. Your judgement needs to be as strict as possible.

#### Evaluation Criteria ####
1. Instruction Adherence:
   - Fully Adhered: The response fully complies with all instructions and requirements of the question.
   - Partially Adhered: The response meets most of the instructions but has some omissions or misunderstandings.
   - Basically Adhered: The response meets some instructions, but the main requirements are not fulfilled.
   - Not Adhered: The response does not meet any instructions.
   Example: If the question requires three examples and the response provides only one, it falls under "Partially Adhered."
2. Usefulness:
   - Highly Useful: The response provides comprehensive and accurate information, fully addressing the issue.
   - Useful but Incomplete: The response provides some useful information, but lacks details or accuracy.
   - Limited Usefulness: The response offers little useful information, with most content being irrelevant or incorrect.
   - Useless or Incorrect: The response is completely irrelevant or incorrect.
   Example: If there are factual errors in the response but the overall direction is correct, it falls under "Useful but Incomplete."
3. Level of Detail:
   - Very Detailed: The response includes ample details covering all aspects of the issue.
   - Detailed but Slightly Lacking: The response is fairly detailed but misses some important details.
   - Basically Detailed: The response provides some details but is not thorough enough overall.
   - Not Detailed: The response is very brief and lacks necessary details.
   Example: If the response provides only a simple conclusion without an explanation, it falls under "Not Detailed."
4. Relevance:
   - Highly Relevant: The response is highly relevant to the question, with information closely aligned with the topic.
   - Generally Relevant: The response is generally relevant but includes some unnecessary information.
   - Partially Relevant: The response has a lot of content that deviates from the topic.
   - Not Relevant: The response is completely irrelevant.
   Example: If the response strays from the topic but still provides some relevant information, it falls under "Partially Relevant."

#### Conversation Context ####
{context}
#### Responses to be Scored ####
{responses}
#### Output Format Requirements ####
Specific Criteria: <Other potential criteria specific to the query and the context, and the weights of each criteria>
Analysis: <Compare different responses based on given Criteria>.
Scores: <the index of the best response based on the judgement, in the format of \boxed{x}>."""
